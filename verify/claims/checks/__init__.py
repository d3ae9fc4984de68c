"""Claim checks; importing this package registers them all with :mod:`logitrank.verify.claims._registry`."""

from . import (
    _approx_claims,  # noqa: F401
    _certificate_claims,  # noqa: F401
    _completeness_claims,  # noqa: F401
    _generator_claims,  # noqa: F401
    _isan_claims,  # noqa: F401
    _learner_claims,  # noqa: F401
    _lingen_claims,  # noqa: F401
    _real_claims,  # noqa: F401
    _real_structure_claims,  # noqa: F401
    _spectral_claims,  # noqa: F401
    _surrogate_claims,  # noqa: F401
    _sweep_claims,  # noqa: F401
    _theory_claims,  # noqa: F401
    _width_claims,  # noqa: F401
)
