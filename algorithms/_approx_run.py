"""Round 2 of :func:`~logitrank.algorithms.learn_approx` (paper B, arXiv 2512.09892): its run options
(``until``, ``max_queries``, ``cert_generator``, ``widening``, ``on_epoch``) and the report that
carries them, :class:`ApproxRunReport` (an :class:`ApproxLearnReport` with the fields below added)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from logitrank._validation import check_int

from ._approx_report import ApproxLearnReport
from ._certificate import WIDENINGS

__all__ = ["STOP_REASONS", "UNTIL_MODES", "ApproxRunReport", "check_run_options"]

#: "accept": stop at the first accepted epoch (the restatement's loop). "budget": keep refining
#: while the epoch (K) and query (``max_queries``) budgets last, and return the best certified epoch.
UNTIL_MODES = ("accept", "budget")
#: Why a run ended: an epoch was accepted (until="accept"), K epochs ran, ``patience`` ran out,
#: or the query budget was spent.
STOP_REASONS = ("accepted", "epochs", "patience", "queries")


def check_run_options(until, max_queries, widening, on_epoch) -> int | None:
    """Validate the run options of :func:`learn_approx`; → ``max_queries`` as an int (or None)."""
    if not isinstance(until, str) or until not in UNTIL_MODES:
        raise ValueError(f"until must be one of {UNTIL_MODES}; got {until!r}")
    if not isinstance(widening, str) or widening not in WIDENINGS:
        raise ValueError(f"widening must be one of {WIDENINGS}; got {widening!r}")
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be None or a callable (epoch, sampler, certificate); got {type(on_epoch).__name__}")
    return None if max_queries is None else check_int("max_queries", max_queries, minimum=1)


@dataclass
class ApproxRunReport(ApproxLearnReport):
    """What :func:`learn_approx` did: every field of :class:`ApproxLearnReport`, and these.

    Soundness: ``accepted`` implies ``tv_bound`` <= ε whatever the settings (the per-entry validation
    can only veto an epoch, never accept one the certificate does not).

    Attributes
    ----------
    until : "accept" | "budget"
        The run mode (see :func:`learn_approx`).
    max_queries : int or None
        The query budget (distinct oracle queries; None: only the K epochs bound the run).
    stop_reason : "accepted" | "epochs" | "patience" | "queries"
        Why the run ended (:data:`STOP_REASONS`).
    cert_seed : int
        The initial seed of the certificate's random stream (``cert_generator``, or derived from
        ``generator``). Independent streams give independent certificates of the same learning draws.
    cert_delta : float
        The level of each epoch's certificate, δ/K (a union bound over the K epochs, so every
        certified bound holds simultaneously with probability >= 1 − δ: the minimum over epochs is
        a valid bound at level δ too).
    widening : "kl" | "log_ratio"
        How ``oracle_error`` widens the certificate (:func:`oracle_widening`).
    oracle_widening : float
        The widening added to every bound (0 with an exact oracle).
    validation_passed : list of (bool or None), one per epoch
        Diagnostic: whether the restatement's per-entry validation passed (``validation_statistic``
        against g; vacuously True when T <= 2); None where it was not run (a dropped epoch, or an epoch
        accepted by the certificate before validation was needed).
    epoch_verdicts : list of str, one per epoch
        "certificate" or "validation" where the epoch was acceptable (certified bound <= ε, no
        fallback, and the validation passed under ``acceptance="validation"``), else "".
    epoch_queries : list of int, one per epoch
        Distinct oracle queries made by the end of each epoch (certificate included).
    """

    until: str = "accept"
    max_queries: int | None = None
    stop_reason: str = ""
    cert_seed: int = 0
    cert_delta: float = math.nan
    widening: str = "kl"
    oracle_widening: float = 0.0
    validation_passed: list = field(default_factory=list)
    epoch_verdicts: list = field(default_factory=list)
    epoch_queries: list = field(default_factory=list)

    @property
    def certified_epochs(self) -> list[int]:
        """Epochs whose sampler was certified (not dropped), 1-based."""
        return [k + 1 for k, b in enumerate(self.cert_bounds) if not math.isnan(b)]
