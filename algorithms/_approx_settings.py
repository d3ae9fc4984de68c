"""Settings of the approximate-rank learner (paper B; docs/approx-learner.md, "Parameters").

:class:`ApproxSettings` is the one place the learner's settings live, validated on construction;
:func:`settings_from` merges ``settings=`` and keyword overrides. The defaults that depend on the
horizon are resolved by :meth:`ApproxSettings.resolved`; each default's derivation is in the
function that computes it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from logitrank._validation import check_int, check_real

from ._certificate import CERT_BOUNDS, WIDENINGS, default_n_cert
from ._chain_lp import LP_SOLVERS
from ._lp_parts import ON_INFEASIBLE, _check_slack_tol

__all__ = [
    "ACCEPTANCE_RULES",
    "STOP_REASONS",
    "UNTIL_MODES",
    "VALIDATION_STATISTICS",
    "WITNESSES_PER_EPOCH",
    "WITNESS_CAPS",
    "WITNESS_RULES",
    "ApproxSettings",
    "default_n_validation",
    "default_slack_tol",
    "default_threshold",
    "settings_from",
]

ACCEPTANCE_RULES = ("certificate", "validation", "either")
VALIDATION_STATISTICS = ("max", "mean")
WITNESS_CAPS = ("none", "rank")
WITNESS_RULES = ("first", "largest")
WITNESSES_PER_EPOCH = ("one", "per_level")
#: "accept": stop at the first accepted epoch (the restatement's loop). "budget": keep refining
#: while the epoch (K) and query (``max_queries``) budgets last, and return the best certified epoch.
UNTIL_MODES = ("accept", "budget")
#: Why a run ended: an epoch was accepted (until="accept"), K epochs ran, ``patience`` ran out,
#: or the query budget was spent.
STOP_REASONS = ("accepted", "epochs", "patience", "queries")


def default_threshold(epsilon: float, horizon: int) -> float:
    """g = ε / (32 T²), the validation threshold of the restatement (docs/approx-learner.md, "Parameters").

    Examples
    --------
    >>> default_threshold(0.1, 5)
    0.000125
    """
    return epsilon / (32 * horizon**2)


def default_n_validation(epsilon: float, epochs: int, delta: float) -> int:
    """n = ⌈ln(K/δ) / ε⌉ fresh sample paths per epoch.

    An epoch whose learned model errs on paths of total probability >= ε shows one of them among n
    samples with probability >= 1 − (1 − ε)^n >= 1 − δ/K; a union bound over the K epochs gives δ.
    (The restatement, "Parameters", uses n ≈ (1/g)·ln(32KT/δ) with g = ε/(32T²): about 10⁵ paths, each
    needing T LP solves, at our smallest sizes — far beyond seconds.)

    Examples
    --------
    >>> default_n_validation(0.1, 19, 0.05)
    60
    """
    return max(1, math.ceil(math.log(epochs / delta) / epsilon))


def default_slack_tol(logit_bound: float) -> float:
    """2λ: the chain slack above which a prefix's LP answer is provably no better than the uniform fallback.

    λ is the largest absolute logit the learner has stored (``learn_approx`` takes it from the
    epoch's spanner rows R_s, which are logits of the oracle at many prefixes).

    Derivation (from the quantities of the restatement's analysis: the per-step TV, the chain slack, the
    logit scale λ of the oracle, and the restatement's fallback for infeasible prefixes).

    1. Per-step cost. By the chain rule TV(P, Q) <= Σ_{t<T} E_{y∼P} TV(P(·|y_{1:t}), Q(·|y_{1:t})), and
       for logit vectors a, b, TV(softmax a, softmax b) <= osc(a − b)/4 <= ‖a − b‖_∞/2 (tested). A
       prefix's contribution is governed by the ∞-norm error of the logits the sampler gives it.
    2. The two answers an infeasible prefix can get. The uniform fallback (zero logits) errs by
       ‖ℓ(y)‖_∞ <= λ. A chain slack σ on the equality (s, w) is a disagreement between two of the
       learner's own estimates of one logit, L(y_{1:s−1}∘w) written over level s and pushed from
       level s − 1; whatever the truth, one of them misses it by >= σ/2, and both are read further down
       the chain. So the slack proves the LP's answer worse than uniform only when σ/2 > λ.
    3. Hence slack_tol = 2λ: a prefix is declared infeasible (its epoch dropped, its tokens uniform)
       only when the fallback cannot be the worse answer.

    Two tighter tolerances were measured against it and against ``math.inf`` (issue 11; see
    ``benchmarks/ablate_slack_tol.py``): g = ε/(32T²) (the previous default, which treats a slack like
    a validation gap) and ε/T (a quarter of the per-step TV budget of step 1). Both drop most epochs of
    approximately-low-rank models: slacks of 0.01–1 come from prefixes whose level-s row the capped,
    sampled spanner misses (a first token absent from the spanner sample, or ~2βd·ε_avg from the
    approximation), each rare, while the fallback they trigger answers them uniformly, and a dropped
    epoch discards every other prefix's progress. With an exact oracle and exact rank the slack is
    ~1e-13 whichever tolerance is used.

    Examples
    --------
    >>> default_slack_tol(1.5)
    3.0
    """
    return 2.0 * logit_bound


@dataclass(frozen=True)
class ApproxSettings:
    """Settings of :func:`learn_approx`, validated on construction (keyword-only).

    Attributes
    ----------
    rank : int >= 1
        d, the cap on every level's spanner.
    epsilon : float in (0, 1)
        Target TV; sets the defaults of ``threshold``, ``n_validation`` and ``n_spanner``.
    beta : float >= 1
        The spanner constant and the LP box ‖c_s‖_∞ <= β (restatement's default 2).
    threshold : float > 0, optional
        g, the witness threshold. Default :func:`default_threshold` = ε/(32T²), the restatement's.
        Gaps above it are witnesses; the per-entry validation passes only when the largest gap is
        below it, a regime of ε_avg ≲ g/14 (see ``acceptance``).
    epochs : int >= 1, optional
        K. Default T·rank + 1: with exact rank a level needs at most rank − 1 witnesses (each raises
        the rank of R_s[:, F̂_s], which starts >= 1), so the restatement's Θ(T·d·log(·)) with the log factor
        set to 1 leaves room for all of them, one per epoch, plus the accepting epoch.
    n_validation : int >= 1, optional
        n. Default :func:`default_n_validation` = ⌈ln(K/δ)/ε⌉.
    n_spanner, n_heldout : int >= 1, optional
        Samples per epoch for the spanners and for the miss rate η. Default ⌈rank·T/ε⌉ each (n_heldout
        defaults to n_spanner): a leave-one-out heuristic that keeps the expected miss rate near
        rank/n_spanner <= ε/T.
    delta : float in (0, 1)
        Failure probability: of ``default_n_validation``, and of the certificate over all K epochs
        (each epoch's bound is taken at level δ/K, so every certified bound holds at once with
        probability >= 1 − δ); it also sizes ``n_cert`` (:func:`default_n_cert` at level δ/K).
    slack_tol : float >= 0 or math.inf, optional
        Largest chain slack of a feasible LP. Default :func:`default_slack_tol` = 2λ with λ the largest
        absolute logit in the epoch's stored rows (derivation there). ``math.inf`` keeps every solved LP.
    tol : float > 0, optional
        Rank tolerance of the spanners (see :func:`barycentric_spanner`).
    witness_rule : "first" | "largest"
    witnesses_per_epoch : "one" | "per_level"
    on_infeasible : "uniform" | "raise"
        Behaviour of the returned sampler on prefixes whose LP is infeasible (see :class:`LPSampler`).
    solver : "highs" | "cvxpy"
        How the chain LPs are solved (see :func:`lp_sampler`); "cvxpy" is the slower reference.
    solver_options : mapping, optional
        HiGHS options (default :data:`DEFAULT_SOLVER_OPTIONS` of the LP module).
    acceptance : "certificate" | "validation" | "either"
        What an epoch must pass to be accepted. Every rule needs the held-out TV certificate
        (:func:`~logitrank.algorithms.tv_certificate`) to bound TV <= ε at level δ/K and the epoch to
        have had no fallback, so ``report.accepted`` implies ``report.tv_bound <= ε`` whatever the
        setting. "certificate" (default): that alone. "validation": the restatement's per-entry witness
        test (see ``validation_statistic``) must pass too — a pre-filter that can only reject.
        "either": the same as "certificate" (kept so old settings still load; before round 2 it let
        the validation accept on its own, past the certificate, which was unsound). Whatever the rule,
        the validation's verdict is reported per epoch (``report.validation_passed``) as a diagnostic.
        Why the certificate (``benchmarks/bench_certificate.py``): the per-entry validation compares
        gaps whose noise floor grows like ≈ 14·ε_avg with g = ε/(32T²), so it can pass only when
        ε_avg ≲ ε/(450·T²) — almost never for a model that is only approximately low rank — while the
        certificate bounds exactly what the guarantee is about, and never accepts TV > ε except with
        probability <= δ over all epochs.
    n_cert : int >= 2, optional
        Fresh paths per epoch for the certificate. Default :func:`default_n_cert` (ε, K, δ): sized for
        completeness, so that a sampler with TV = 0.7·ε is certified at ε with probability >= 0.9 at
        level δ/K (2182 paths at ε = 0.1, K = 16, δ = 0.05; :func:`certificate_power` is exact for the
        worst-case Bernoulli statistic).
    cert_bound : "kl" | "bernstein" | "min"
        The certificate's upper confidence bound (see :mod:`logitrank.algorithms._certificate`).
    oracle_error : float >= 0
        ξ, a known bound on the oracle's per-logit error against the model the user cares about (the
        truth): ‖ℓ_oracle(h) − ℓ_truth(h)‖_∞ <= ξ at every prefix. The certificate then bounds TV to the
        truth by adding :func:`~logitrank.algorithms.oracle_widening` (ξ, T, ``widening``) to its bound
        on TV to the oracle (``report.bounds_tv_to`` says which). Default 0: the bound is on TV to the
        oracle itself.
    widening : "kl" | "log_ratio"
        How ``oracle_error`` widens each bound: "kl" (default) the smallest of the proved bounds of
        :func:`~logitrank.algorithms.oracle_widening`, ≈ ξ·√T/2 for small ξ; "log_ratio" the earlier
        1 − e^{−2Tξ} (kept for comparison; 4√T times looser for small ξ).
    until : "accept" | "budget"
        "accept" (default, the restatement's loop): stop at the first acceptable epoch. "budget" (anytime
        mode): keep refining while the budgets (K epochs, ``max_queries``, ``patience``) last, and return
        the acceptable epoch with the smallest certified bound.
    max_queries : int >= 1, optional
        A budget of distinct oracle queries, certificate included, checked before each epoch after the
        first (None: only the K epochs and ``patience`` bound the run).
    validation_statistic : "max" | "mean"
        What the validation compares with g: the largest per-entry gap (the restatement's test, a
        maximum over n·T²·V entries) or the mean gap over them (closer to paper B's ε_avg, an average
        over histories and futures). Witnesses are chosen among entries above g either way.
    witness_cap : "none" | "rank"
        "rank" stops adding witnesses at a level once it has ``rank`` of them (B2's elliptical-potential
        count with its log factor set to 1; with exact rank a level needs at most rank − 1).
    noise_floor : bool
        Ignore witness candidates whose gap is not above the level's own chain slack in that epoch
        (the largest gap on words already in F̂_s, which the LP fitted): such gaps are the
        approximation's noise, not a missed direction.
    patience : int >= 1 or None
        Stop after this many epochs in a row that neither added a witness nor brought a smaller
        certified bound (None: run all K), under either ``until``. With ``witness_cap="rank"`` a run
        then ends within rank·T + patience epochs.

    Examples
    --------
    >>> s = ApproxSettings(rank=2, epsilon=0.1)
    >>> s.resolved(horizon=5).threshold, s.resolved(horizon=5).epochs
    (0.000125, 11)
    >>> ApproxSettings(rank=0, epsilon=0.1)
    Traceback (most recent call last):
    ...
    ValueError: rank must be >= 1; got 0
    >>> ApproxSettings(rank=2, epsilon=0.1, until="forever")
    Traceback (most recent call last):
    ...
    ValueError: until must be one of ('accept', 'budget'); got 'forever'
    """

    rank: int
    epsilon: float
    beta: float = 2.0
    threshold: float | None = None
    epochs: int | None = None
    n_validation: int | None = None
    n_spanner: int | None = None
    n_heldout: int | None = None
    delta: float = 0.05
    slack_tol: float | None = None
    tol: float | None = None
    witness_rule: str = "first"
    witnesses_per_epoch: str = "per_level"
    on_infeasible: str = "uniform"
    solver: str = "highs"
    solver_options: Mapping | None = None
    acceptance: str = "certificate"
    n_cert: int | None = None
    cert_bound: str = "kl"
    oracle_error: float = 0.0
    validation_statistic: str = "max"
    witness_cap: str = "none"
    noise_floor: bool = True
    patience: int | None = 3
    widening: str = "kl"
    until: str = "accept"
    max_queries: int | None = None

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)
        put("rank", check_int("rank", self.rank, minimum=1))
        put("epsilon", check_real("epsilon", self.epsilon, low=0.0, high=1.0, low_open=True, high_open=True))
        put("beta", check_real("beta", self.beta, low=1.0))
        put("delta", check_real("delta", self.delta, low=0.0, high=1.0, low_open=True, high_open=True))
        if self.threshold is not None:
            put("threshold", check_real("threshold", self.threshold, low=0.0, low_open=True))
        for name in ("epochs", "n_validation", "n_spanner", "n_heldout"):
            if getattr(self, name) is not None:
                put(name, check_int(name, getattr(self, name), minimum=1))
        if self.slack_tol is not None:
            put("slack_tol", _check_slack_tol(self.slack_tol))
        if self.tol is not None:
            put("tol", check_real("tol", self.tol, low=0.0, low_open=True))
        for name, allowed in (("witness_rule", WITNESS_RULES), ("witnesses_per_epoch", WITNESSES_PER_EPOCH),
                              ("on_infeasible", ON_INFEASIBLE), ("solver", LP_SOLVERS),
                              ("acceptance", ACCEPTANCE_RULES), ("cert_bound", CERT_BOUNDS),
                              ("validation_statistic", VALIDATION_STATISTICS), ("witness_cap", WITNESS_CAPS),
                              ("widening", WIDENINGS), ("until", UNTIL_MODES)):
            if not isinstance(getattr(self, name), str) or getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        if self.n_cert is not None:
            put("n_cert", check_int("n_cert", self.n_cert, minimum=2))
        for name in ("patience", "max_queries"):
            if getattr(self, name) is not None:
                put(name, check_int(name, getattr(self, name), minimum=1))
        put("oracle_error", check_real("oracle_error", self.oracle_error, low=0.0))
        if not isinstance(self.noise_floor, bool):
            raise TypeError(f"noise_floor must be True or False; got {self.noise_floor!r}")
        if self.solver_options is not None:
            if not isinstance(self.solver_options, Mapping):
                raise TypeError(f"solver_options must be a mapping of HiGHS options; got {type(self.solver_options).__name__}")
            put("solver_options", dict(self.solver_options))  # a private copy (picklable, unlike a proxy)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """Names of the settings (the keywords :func:`learn_approx` accepts besides ``settings``)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def resolved(self, horizon: int) -> _Resolved:
        """The numbers one run uses at horizon T: every optional setting replaced by its default."""
        T = check_int("horizon", horizon, minimum=1)
        K = T * self.rank + 1 if self.epochs is None else self.epochs
        n_sp = math.ceil(self.rank * T / self.epsilon) if self.n_spanner is None else self.n_spanner
        return _Resolved(
            threshold=default_threshold(self.epsilon, T) if self.threshold is None else self.threshold,
            epochs=K,
            n_validation=default_n_validation(self.epsilon, K, self.delta) if self.n_validation is None else self.n_validation,
            n_spanner=n_sp,
            n_heldout=n_sp if self.n_heldout is None else self.n_heldout,
            slack_tol=self.slack_tol,
            n_cert=default_n_cert(self.epsilon, K, self.delta) if self.n_cert is None else self.n_cert,
        )


@dataclass(frozen=True)
class _Resolved:
    """The horizon-dependent numbers of one run (see :meth:`ApproxSettings.resolved`)."""

    threshold: float
    epochs: int
    n_validation: int
    n_spanner: int
    n_heldout: int
    slack_tol: float | None  # None: 2λ from each epoch's rows (default_slack_tol)
    n_cert: int


def settings_from(settings, options: dict) -> ApproxSettings:
    """``settings=`` and/or keywords → one validated ApproxSettings (keywords override)."""
    unknown = sorted(set(options) - set(ApproxSettings.fields()))
    if unknown:
        raise TypeError(f"learn_approx got unexpected keyword(s) {unknown}; settings are {ApproxSettings.fields()}")
    if settings is None:
        missing = [k for k in ("rank", "epsilon") if k not in options]
        if missing:
            raise TypeError(f"learn_approx needs {' and '.join(missing)} (as keywords or through settings=ApproxSettings(...))")
        return ApproxSettings(**options)
    if not isinstance(settings, ApproxSettings):
        raise TypeError(f"settings must be an ApproxSettings; got {type(settings).__name__}")
    return dataclasses.replace(settings, **options) if options else settings


