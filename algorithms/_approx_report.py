"""What :func:`~logitrank.algorithms.learn_approx` reports: :class:`ApproxLearnReport` and its warning."""

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
    def max_witnesses(self) -> int:
        """The largest witness count of a level."""
        return max(self.witnesses, default=0)
