"""Round 2 of :func:`~logitrank.algorithms.learn_approx` (paper B, arXiv 2512.09892), kept for its names.

The run options ``until``, ``max_queries`` and ``widening`` are now fields of the validated
:class:`~logitrank.algorithms.ApproxSettings` (keywords of ``learn_approx`` still set them), and the
round-2 report fields live in :class:`~logitrank.algorithms.ApproxLearnReport`; ``ApproxRunReport``
is that class under its round-2 name. What stays here: the check of ``on_epoch``, the one run option
that is neither a setting nor randomness (``cert_generator``, like ``generator``, is randomness).
"""

from __future__ import annotations

from ._approx_report import ApproxLearnReport
from ._approx_settings import STOP_REASONS, UNTIL_MODES

__all__ = ["STOP_REASONS", "UNTIL_MODES", "ApproxRunReport", "check_on_epoch"]

#: the report of :func:`learn_approx` under its round-2 name (one class: :class:`ApproxLearnReport`)
ApproxRunReport = ApproxLearnReport


def check_on_epoch(on_epoch) -> None:
    """``on_epoch`` must be None or a callable (epoch, sampler, certificate)."""
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be None or a callable (epoch, sampler, certificate); got {type(on_epoch).__name__}")
