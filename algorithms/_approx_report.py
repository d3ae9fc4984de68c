"""What :func:`~logitrank.algorithms.learn_approx` reports: :class:`ApproxLearnReport` and its warning.

``ApproxRunReport`` (round 2 of the learner, issue 31) is the same class under its earlier name
(:mod:`._approx_run`): its fields now live here, with defaults, so one report type carries them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._approx_settings import ApproxSettings

__all__ = ["ApproxLearnReport", "ApproxNotAcceptedWarning"]


class ApproxNotAcceptedWarning(RuntimeWarning):
    """:func:`learn_approx` returned a sampler that no epoch validated (``report.accepted`` is False).

    The message repeats ``report.failure``: why no epoch was accepted, and which sampler came back.
    """


@dataclass
class ApproxLearnReport:
    """What :func:`learn_approx` did, what it cost, and how it failed if it did.

    Attributes
    ----------
    accepted : bool
        An epoch passed the acceptance rule (``accepted_by``) with no fallback of any kind: every LP
        of its validation and certificate feasible, no spanner level filled in with a substitute row.
        False is the restatement's non-convergence signature: ``failure`` says why, the returned
        sampler was not accepted, and an :class:`ApproxNotAcceptedWarning` was issued.
    epochs, max_epochs : int
        Epochs run, and K.
    witnesses : list of int, levels s = 1 … T
        Words added to F̂_s (the elliptical-potential count, claim B2).
    witness_log : list of (epoch, level, word, gap)
    future_sizes : list of int, levels 1 … T
        |F̂_s| at the end (a fallback sampler, see step 5, may hold fewer).
    spanner_sizes, spanner_swaps : list of int, levels 1 … T − 1 (returned sampler's epoch)
    miss_rates, heldout_residuals : list of float, levels 1 … T − 1 (returned sampler's epoch)
        η per level (0 at level 1) and the largest relative residual of a held-out row.
    lp_solves, lp_infeasible : int
        Distinct chain LPs solved during validation over all epochs, and those infeasible.
    lp_cold_restarts : int
        LPs that HiGHS redid from scratch after failing from the previous basis (the answer is the
        cold solve's, so this is not a fallback of the result; reported for transparency).
    dropped_epochs : list of int
        Epochs dropped because some validation LP was infeasible (restatement, step 3).
    max_gaps : list of float, one per epoch
        Largest |pushed − direct| seen (nan for a dropped epoch); includes words already in F̂_s,
        whose gaps are chain slack rather than witnesses.
    max_slacks : list of float, one per epoch
        Largest chain slack over the epoch's validation LPs (nan when none was solved).
    spanner_fallbacks : list of (epoch, level)
        Levels whose sampled rows were all zero while held-out rows were not, so a zero row stood
        in for the spanner (a fallback: such an epoch is never accepted).
    queries : int
        Distinct logit queries that reached the oracle (repeats are served by a QueryCache).
    requests, cache_hits : int
        All lookups, and those answered from memory.
    samples : int
        Sequences drawn from the oracle (spanner, held-out and validation samples).
    threshold, slack_tol, beta : float
        slack_tol is the tolerance of the returned sampler's epoch (the default depends on its rows).
    rank, n_validation, n_spanner, n_heldout : int
    witness_rule, witnesses_per_epoch : str
    lp_seconds, seconds : float
        Time inside the LP solver, and wall time.
    failure : str
        "" when accepted, else the failure signature in words.
    settings : ApproxSettings or None
        The settings of the run.
    accepted_by : str
        "certificate", "validation" or "" (not accepted).
    returned_epoch : int
        The epoch whose sampler came back: the accepting one, else the one with the smallest certified
        bound (the last epoch's when no epoch was certified).
    cert_estimates, cert_bounds : list of float, one per epoch
        The certificate's estimate x̄ of TV and its upper bound at level δ/K (nan for a dropped epoch).
    mean_gaps : list of float, one per epoch
        Mean |pushed − direct| over the validated entries (nan for a dropped epoch).
    n_cert, cert_queries : int
        Paths per certificate, and the distinct oracle queries the certificates made (in ``queries``).
    acceptance, cert_bound : str
    stopped_early : bool
        The run stopped before K epochs because ``patience`` epochs in a row added no witness and
        brought no smaller certified bound.
    until : "accept" | "budget"
        The run mode (``ApproxSettings.until``).
    max_queries : int or None
        The query budget (distinct oracle queries; None: only the K epochs bound the run).
    stop_reason : "accepted" | "epochs" | "patience" | "queries"
        Why the run ended (:data:`~logitrank.algorithms._approx_settings.STOP_REASONS`).
    cert_seed : int
        The initial seed of the certificate's random stream (``cert_generator``, or derived from
        ``generator``). Independent streams give independent certificates of the same learning draws.
    cert_delta : float
        The level of each epoch's certificate, δ/K (a union bound over the K epochs, so every
        certified bound holds simultaneously with probability >= 1 − δ: the minimum over epochs is
        a valid bound at level δ too).
    widening : "kl" | "log_ratio"
        How ``oracle_error`` widens the certificate (:func:`~logitrank.algorithms.oracle_widening`).
    oracle_widening : float
        The widening added to every bound (0 with ``oracle_error`` 0); see :attr:`bounds_tv_to`.
    validation_passed : list of (bool or None), one per epoch
        Diagnostic: whether the restatement's per-entry validation passed (``validation_statistic``
        against g; vacuously True when T <= 2); None where it was not run (a dropped epoch, or an epoch
        accepted by the certificate before validation was needed).
    epoch_verdicts : list of str, one per epoch
        "certificate" or "validation" where the epoch was acceptable (certified bound <= ε, no
        fallback, and the validation passed under ``acceptance="validation"``), else "".
    epoch_queries : list of int, one per epoch
        Distinct oracle queries made by the end of each epoch (certificate included).

    Soundness: ``accepted`` implies ``tv_bound`` <= ε whatever the settings (the per-entry validation
    can only veto an epoch, never accept one the certificate does not).
    """

    accepted: bool
    epochs: int
    max_epochs: int
    witnesses: list
    witness_log: list
    future_sizes: list
    spanner_sizes: list
    spanner_swaps: list
    miss_rates: list
    heldout_residuals: list
    lp_solves: int
    lp_infeasible: int
    dropped_epochs: list
    max_gaps: list
    queries: int
    requests: int
    cache_hits: int
    samples: int
    threshold: float
    slack_tol: float
    beta: float
    rank: int
    n_validation: int
    n_spanner: int
    n_heldout: int
    witness_rule: str
    witnesses_per_epoch: str
    lp_seconds: float = 0.0
    seconds: float = 0.0
    failure: str = ""
    max_slacks: list = field(default_factory=list)
    spanner_fallbacks: list = field(default_factory=list)
    lp_cold_restarts: int = 0
    settings: ApproxSettings | None = None
    accepted_by: str = ""
    returned_epoch: int = 0
    cert_estimates: list = field(default_factory=list)
    cert_bounds: list = field(default_factory=list)
    mean_gaps: list = field(default_factory=list)
    n_cert: int = 0
    cert_queries: int = 0
    acceptance: str = ""
    cert_bound: str = ""
    stopped_early: bool = False
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
    def infeasibility_rate(self) -> float:
        """lp_infeasible / lp_solves (0 when no LP was solved)."""
        return self.lp_infeasible / self.lp_solves if self.lp_solves else 0.0

    @property
    def max_miss_rate(self) -> float:
        return max(self.miss_rates, default=0.0)

    @property
    def tv_bound(self) -> float:
        """The certified upper bound on TV of the returned sampler (nan when its epoch was not certified)."""
        if not self.returned_epoch or self.returned_epoch > len(self.cert_bounds):
            return math.nan
        return self.cert_bounds[self.returned_epoch - 1]

    @property
    def bounds_tv_to(self) -> str:
        """Which TV ``tv_bound`` bounds: "oracle" (``oracle_error`` 0: TV to the model that was queried)
        or "truth" (``oracle_error`` ξ > 0: TV to any model whose logits are within ξ per entry of the
        oracle's — the truth, when ξ is a true bound on the oracle's error — the bound to the oracle
        plus ``oracle_widening``)."""
        xi = self.settings.oracle_error if self.settings is not None else 0.0
        return "truth" if xi > 0 else "oracle"

    @property
    def certified_epochs(self) -> list[int]:
        """Epochs whose sampler was certified (not dropped), 1-based."""
        return [k + 1 for k, b in enumerate(self.cert_bounds) if not math.isnan(b)]

    @property
    def max_witnesses(self) -> int:
        """The largest witness count of a level."""
        return max(self.witnesses, default=0)
