"""Claim checks; importing this package registers them all with :mod:`verify._registry`."""

from . import _isan_claims  # noqa: F401
