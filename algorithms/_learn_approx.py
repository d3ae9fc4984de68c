"""The approximate-rank query learner of paper B (arXiv 2512.09892; docs/approx-learner.md, "Main loop").

Epochs k = 1 … K: rebuild F̃_s and a DistSpanner per level, draw fresh sample paths, solve the chain
LP of every prefix, and compare, along each path, the coefficients of level s pushed from level s − 1
with those of level s itself on longer futures. A disagreement above the threshold g is a *witness*:
a word the representative futures F̂_s missed. It is added and the next epoch starts. An epoch with no
witness and no fallback returns the learned :class:`~logitrank.algorithms.LPSampler`.

The settings live in the validated frozen dataclass :class:`ApproxSettings`; :func:`learn_approx`
reads them from ``settings=`` or from keywords, and runs the steps below, one function each:
:func:`_build_levels` (1), :func:`_draw_paths` (2), :func:`_solve_chains` (3), :func:`_validate` (4),
:func:`_add_witnesses`, and :func:`_finish` (5, the report and the non-acceptance warning).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from logitrank._validation import as_generator, check_int, check_model, check_real
from logitrank.synth import CountingOracle, LanguageModel

from ._chain_lp import LP_SOLVERS
from ._dist_spanner import dist_spanner, word_rows
from ._lp_sampler import ON_INFEASIBLE, LevelData, LPSampler, _check_slack_tol, extended_words
from ._query_cache import QueryCache

__all__ = [
    "ApproxLearnReport",
    "ApproxNotAcceptedWarning",
    "ApproxSettings",
    "default_n_validation",
    "default_slack_tol",
    "default_threshold",
    "learn_approx",
]

WITNESS_RULES = ("first", "largest")
WITNESSES_PER_EPOCH = ("one", "per_level")


class ApproxNotAcceptedWarning(RuntimeWarning):
    """:func:`learn_approx` returned a sampler that no epoch validated (``report.accepted`` is False).

    The message repeats ``report.failure``: why no epoch was accepted, and which sampler came back.
    """


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
        g. Default :func:`default_threshold` = ε/(32T²).
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
        Failure probability in ``default_n_validation``.
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

    Examples
    --------
    >>> s = ApproxSettings(rank=2, epsilon=0.1)
    >>> s.resolved(horizon=5).threshold, s.resolved(horizon=5).epochs
    (0.000125, 11)
    >>> ApproxSettings(rank=0, epsilon=0.1)
    Traceback (most recent call last):
    ...
    ValueError: rank must be >= 1; got 0
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
    witnesses_per_epoch: str = "one"
    on_infeasible: str = "uniform"
    solver: str = "highs"
    solver_options: Mapping | None = None

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
                              ("on_infeasible", ON_INFEASIBLE), ("solver", LP_SOLVERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
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


@dataclass
class ApproxLearnReport:
    """What :func:`learn_approx` did, what it cost, and how it failed if it did.

    Attributes
    ----------
    accepted : bool
        An epoch passed validation with no fallback of any kind: no witness, every validation LP
        feasible, no spanner level filled in with a substitute row. False is the restatement's
        non-convergence signature: ``failure`` says why, the returned sampler was not validated, and
        an :class:`ApproxNotAcceptedWarning` was issued.
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

    @property
    def infeasibility_rate(self) -> float:
        """lp_infeasible / lp_solves (0 when no LP was solved)."""
        return self.lp_infeasible / self.lp_solves if self.lp_solves else 0.0

    @property
    def max_miss_rate(self) -> float:
        return max(self.miss_rates, default=0.0)

    @property
    def max_witnesses(self) -> int:
        """The largest witness count of a level."""
        return max(self.witnesses, default=0)


@dataclass
class _Epoch:
    """One epoch's learned state: the sampler and its spanner diagnostics."""

    sampler: LPSampler
    swaps: list
    miss: list
    resid: list
    fallback_levels: list


@dataclass
class _Run:
    """What the epochs accumulate (mutable; one per call of :func:`learn_approx`)."""

    hats: list
    witnesses: list
    log: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    max_gaps: list = field(default_factory=list)
    max_slacks: list = field(default_factory=list)
    spanner_fallbacks: list = field(default_factory=list)
    lp_solves: int = 0
    lp_infeasible: int = 0
    lp_cold_restarts: int = 0
    lp_seconds: float = 0.0


def _build_levels(cache, hats, *, V, T, settings: ApproxSettings, samples, heldout) -> tuple[list, list, list, list, list]:
    """Step 1: F̃_s and DistSpanner(s) for s = 2 … T − 1 (level 1 is the empty history).

    Returns (levels, swaps, miss rates, held-out residuals, levels that fell back to a zero row).
    """
    levels, swaps, miss, resid, fallback_levels = [], [], [], [], []
    for s in range(1, max(1, T - 1) + 1):
        tilde = extended_words(hats[s - 1], hats[s] if s < T else [], V)
        if s == 1:
            rows = word_rows(cache, torch.zeros(1, 0, dtype=torch.long), tilde)  # (1, |F̃_1|)
            levels.append(LevelData([()], list(hats[0]), tilde, rows))
            swaps.append(0), miss.append(0.0), resid.append(0.0)
            continue
        ds = dist_spanner(cache, s, tilde, beta=settings.beta, rank=settings.rank, tol=settings.tol,
                          samples=samples, heldout=heldout)
        if ds.size == 0:  # every sampled row is zero (uniform next tokens): keep one zero row
            ds_hist, ds_rows = [tuple(samples[0, : s - 1].tolist())], torch.zeros(1, len(tilde), dtype=torch.float64)
            if ds.miss_rate > 0:  # held-out rows are not zero: the zero row is a substitute
                fallback_levels.append(s)
        else:
            ds_hist, ds_rows = ds.histories, ds.rows
        levels.append(LevelData(ds_hist, list(hats[s - 1]), tilde, ds_rows))
        swaps.append(ds.spanner.swaps), miss.append(ds.miss_rate), resid.append(ds.heldout_residual)
    return levels, swaps, miss, resid, fallback_levels


def _draw_paths(cache, n: int, gen: torch.Generator) -> torch.Tensor:
    """Step 2: n fresh sample paths y^(1..n) of M → (n, T) LongTensor on the CPU."""
    return cache.sample(n, generator=gen).cpu()


def _solve_chains(sampler: LPSampler, paths: torch.Tensor) -> tuple[dict | None, float]:
    """Step 3: the chain LP of every prefix y^(u)_{1:t}, t = 1 … T − 1 (one solve per distinct y_{1:t−1}).

    Returns (coefs, largest slack): coefs[t][s] is the (n, m_s) tensor of c_s for every path, or
    coefs is None when some LP is infeasible (then the epoch is dropped).
    """
    n, T = paths.shape
    L = max(1, T - 1)
    coefs: dict[int, dict[int, torch.Tensor]] = {}
    worst = float("nan")
    feasible = True
    for t in range(1, L + 1 if T > 1 else 1):
        per_path = [sampler.reconstruct(paths[u, :t].tolist()) for u in range(n)]
        slacks = [rec.slack_max for rec in per_path if not math.isnan(rec.slack_max)]
        if slacks:
            worst = max(slacks) if math.isnan(worst) else max(worst, max(slacks))
        feasible &= all(rec.feasible for rec in per_path)
        if feasible:
            coefs[t] = {s: torch.stack([rec.coefficients[s - 1] for rec in per_path]) for s in range(1, t + 1)}  # (n, m_s)
    return (coefs if feasible else None), worst


def _level_logits(cache, hist: list, paths: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """L(h_j ∘ y[u, start:stop]) for every history h_j and path u: → (n, m, V) float64."""
    n, m = paths.shape[0], len(hist)
    H = torch.tensor(hist, dtype=torch.long).reshape(m, len(hist[0]))  # (m, |h|)
    seg = paths[:, start:stop]  # (n, stop − start)
    prefixes = torch.cat([H.unsqueeze(0).expand(n, -1, -1), seg.unsqueeze(1).expand(-1, m, -1)], dim=2)  # (n, m, len)
    L = cache.logits(prefixes.reshape(n * m, -1)).to(torch.float64)  # (n·m, V)
    return L.reshape(n, m, -1)  # (n, m, V)


def _validate(cache, sampler: LPSampler, paths: torch.Tensor, coefs: dict, hats, g: float):
    """Step 4: every (u, t, s, r, a) with |pushed − direct| > g on a word not yet in F̂_s.

    Returns (candidates as (u, t, s, r, a, gap, word) in the fixed order (u, t, s, r, a), largest gap).
    """
    T = paths.shape[1]
    L = max(1, T - 1)
    found, worst = [], 0.0
    for s in range(2, L + 1):
        hist_prev, hist = sampler.levels[s - 2].histories, sampler.levels[s - 1].histories
        in_hat = set(hats[s - 1])
        for r in range(s, T + 1):
            # pushed: h_{s−1,j} ∘ y_{s−1} ∘ y_{s:r−1}; direct: h_{s,i} ∘ y_{s:r−1}. Both of length r − 1.
            Lp = _level_logits(cache, hist_prev, paths, s - 2, r - 1)  # (n, m_{s−1}, V)
            Ld = _level_logits(cache, hist, paths, s - 1, r - 1)  # (n, m_s, V)
            for t in range(max(s, r - 1), L + 1):
                pushed = torch.einsum("nj,njv->nv", coefs[t][s - 1], Lp)  # (n, V)
                direct = torch.einsum("ni,niv->nv", coefs[t][s], Ld)  # (n, V)
                gap = (pushed - direct).abs()  # (n, V)
                worst = max(worst, float(gap.max()))
                for u, a in (gap > g).nonzero().tolist():
                    word = tuple(paths[u, s - 1 : r - 1].tolist()) + (a,)
                    if word not in in_hat:
                        found.append((u, t, s, r, a, float(gap[u, a]), word))
    found.sort(key=lambda c: c[:5])
    return found, worst


def _pick(candidates: list, rule: str, per_epoch: str) -> list:
    """The witnesses to add: one overall, or one per level; the first in order, or the largest gap."""
    if per_epoch == "one":
        groups = [candidates]
    else:
        levels = sorted({c[2] for c in candidates})
        groups = [[c for c in candidates if c[2] == s] for s in levels]
    pick = (lambda grp: grp[0]) if rule == "first" else (lambda grp: max(grp, key=lambda c: c[5]))
    return [pick(grp) for grp in groups if grp]


def _add_witnesses(run: _Run, epoch: int, candidates: list, settings: ApproxSettings) -> None:
    """Step 4, end: add the picked witnesses to F̂_s for the next epoch."""
    for _u, _t, s, _r, _a, gap, word in _pick(candidates, settings.witness_rule, settings.witnesses_per_epoch):
        run.hats[s - 1].append(word)
        run.witnesses[s - 1] += 1
        run.log.append((epoch, s, word, gap))


def _failure(run: _Run, K: int, g: float, returned_validated_lps: bool) -> str:
    """The non-convergence signature in words."""
    last_gap = next((x for x in reversed(run.max_gaps) if not math.isnan(x)), float("nan"))
    parts = [(f"non-convergence: no epoch passed validation in K={K} epochs; {len(run.dropped)} dropped for "
              f"infeasible LPs (LP infeasibility rate {run.lp_infeasible / max(run.lp_solves, 1):.3g})")]
    if run.spanner_fallbacks:
        parts.append(f"{len(run.spanner_fallbacks)} spanner level(s) replaced by a zero row (epoch, level) "
                     f"{run.spanner_fallbacks[:4]}")
    parts.append(f"{len(run.log)} witnesses added (largest gap of the last validated epoch {last_gap:.3g} vs g={g:.3g})")
    returned = "that of the last epoch with feasible LPs" if returned_validated_lps else "the last epoch's"
    return "; ".join(parts) + f". The returned sampler is {returned} and was not validated."


def _settings_from(settings, options: dict) -> ApproxSettings:
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


def learn_approx(
    oracle: LanguageModel,
    settings: ApproxSettings | None = None,
    *,
    generator,
    **options,
) -> tuple[LPSampler, ApproxLearnReport]:
    """Learn an approximately low-logit-rank model from logit queries (paper B, main algorithm).

    Steps (numbered as in the restatement's "Main loop"), per epoch k = 1 … K:

    0. F̂_s starts as every single token at every level. [choice] The printed algorithm may seed
       from one sample; all single tokens is simpler and sound. It is not a parameter: the readout
       ℓ(z) = Σ_i c_{t,i} R_t[i, y_t·z] reads the word y_t·z ∈ Σ·F̂_{t+1} for every z, so every
       single token must be in F̂_{t+1} whatever the seed.
    1. F̃_s = F̂_s ∪ Σ·F̂_{s+1}; :func:`dist_spanner` for s = 2 … T − 1, capped at ``rank`` rows.
       Level T (histories of length T − 1) is skipped: the LP of y_{1:t} needs levels 1 … t and
       t <= T − 1, so its rows would never be read. [choice] One batch of ``n_spanner`` (and
       ``n_heldout``) samples per epoch serves every level.
    2. ``n_validation`` fresh sample paths y^(u).
    3. The chain LP of every y^(u)_{1:t}, t < T (:class:`LPSampler`). If any is infeasible (max
       slack above ``slack_tol``, default 2λ — see :func:`default_slack_tol` for the derivation and
       the measured alternatives — or no solver solution), the epoch is dropped (recorded in ``dropped_epochs``) and the next
       one starts with fresh samples and unchanged futures.
    4. Validation: for every (u, t), level 2 <= s <= t, end r ∈ [s, t+1] and token a, with
       w = y_{s:r−1}·a, compare pushed Σ_j c_{s−1,j} L(h_{s−1,j}∘y_{s−1}∘w) with direct
       Σ_i c_{s,i} L(h_{s,i}∘w) (both through the query cache). Level s = 1 is skipped: c_1 = e_1
       and both sides are the true L(w). A gap above g on a word not yet in F̂_s is a witness;
       gaps on words already in F̂_s are chain slack, governed by step 3. [choice]
       ``witness_rule`` picks the first witness in the order (u, t, s, r, a) (the restatement) or the
       largest gap; ``witnesses_per_epoch`` adds one witness per epoch (the restatement) or one per level.
    5. No witness and no fallback (every validation LP feasible, no zero-row spanner level): return
       the learned sampler, ``report.accepted = True``. After K epochs without acceptance the restatement (docs/approx-learner.md)
       reports non-convergence: ``report.accepted = False``, ``report.failure`` says why, and an
       :class:`ApproxNotAcceptedWarning` is issued. [choice] The sampler returned then is that of
       the last epoch whose validation LPs were all feasible (the last epoch's when none was): a
       dropped epoch's sampler answers the failing prefixes with uniform tokens, while a rejected
       one only missed a witness.

    Parameters
    ----------
    oracle : LanguageModel with a finite horizon T
        Queried for logits and samples only, through a :class:`logitrank.synth.CountingOracle` under a
        :class:`QueryCache` (``report.queries`` counts distinct prefixes).
    settings : ApproxSettings, optional
        All settings (see :class:`ApproxSettings` for each one, its default and its derivation).
    generator : torch.Generator or int
        All randomness (samples of the oracle).
    **options
        Any field of :class:`ApproxSettings` as a keyword (``rank=``, ``epsilon=``, ``beta=``, …),
        validated into the dataclass; with ``settings`` given they override its fields.

    Returns
    -------
    (LPSampler, ApproxLearnReport)

    Warns
    -----
    ApproxNotAcceptedWarning
        On every return with ``report.accepted`` False.

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> truth = random_isan(2, 4, 2, generator=0)
    >>> learned, rep = learn_approx(truth, rank=2, epsilon=0.1, n_validation=8, n_spanner=16, generator=0)
    >>> rep.accepted, rep.witnesses, rep.lp_infeasible
    (True, [0, 1, 1, 0], 0)
    >>> 0.5 * (truth.distribution() - learned.distribution()).abs().sum().item() < 1e-9
    True
    """
    settings = _settings_from(settings, options)
    check_model("oracle", oracle, needs=("vocab_size", "horizon", "logits"))
    T = oracle.horizon
    if T is None:
        raise ValueError("learn_approx needs a model with a finite horizon; got horizon=None")
    V = oracle.vocab_size
    plan = settings.resolved(T)
    gen = as_generator(generator, torch.device(getattr(oracle, "device", "cpu")))
    start = time.perf_counter()
    counter = CountingOracle(oracle)
    cache = QueryCache(counter)
    run = _Run(hats=[[(z,) for z in range(V)] for _ in range(T)], witnesses=[0] * T)  # 0. F̂_s, s = 1 … T
    last = validated = None  # the last epoch, and the last epoch whose validation LPs were all feasible
    accepted = False
    for epoch in range(1, plan.epochs + 1):
        samples = _draw_paths(cache, plan.n_spanner, gen)  # (N, T)
        heldout = _draw_paths(cache, plan.n_heldout, gen)  # (N', T)
        levels, swaps, miss, resid, fell_back = _build_levels(cache, run.hats, V=V, T=T, settings=settings,
                                                              samples=samples, heldout=heldout)  # 1.
        slack_tol = plan.slack_tol
        if slack_tol is None:  # 2λ, λ = the largest absolute stored logit
            slack_tol = default_slack_tol(max(float(lv.rows.abs().max()) for lv in levels))
        sampler = LPSampler(levels, vocab_size=V, horizon=T, beta=settings.beta, slack_tol=slack_tol,
                            on_infeasible=settings.on_infeasible, solver_options=settings.solver_options,
                            solver=settings.solver)
        last = _Epoch(sampler, swaps, miss, resid, fell_back)
        run.spanner_fallbacks += [(epoch, s) for s in fell_back]
        paths = _draw_paths(cache, plan.n_validation, gen)  # 2. (n, T)
        coefs, worst_slack = _solve_chains(sampler, paths)  # 3.
        run.lp_solves += sampler.lp_solves
        run.lp_infeasible += sampler.lp_infeasible
        run.lp_cold_restarts += sampler.lp_cold_restarts
        run.lp_seconds += sampler.lp_seconds
        run.max_slacks.append(worst_slack)
        if coefs is None:
            run.dropped.append(epoch)
            run.max_gaps.append(float("nan"))
            continue
        validated = last
        candidates, worst = _validate(cache, sampler, paths, coefs, run.hats, plan.threshold) if T > 2 else ([], 0.0)  # 4.
        run.max_gaps.append(worst)
        fallbacks = sampler.lp_infeasible + sampler.fallback_prefixes + len(fell_back)
        if not candidates and fallbacks == 0:
            accepted = True  # 5.
            break
        _add_witnesses(run, epoch, candidates, settings)
    return _finish(run, settings, plan, accepted, epoch, last, validated, counter, cache, start)


def _finish(run, settings, plan, accepted, epoch, last, validated, counter, cache, start):
    """Step 5: pick the sampler to return, write the report, warn when not accepted."""
    chosen = last if accepted or validated is None else validated
    failure = "" if accepted else _failure(run, plan.epochs, plan.threshold, validated is not None)
    report = ApproxLearnReport(
        accepted=accepted, epochs=epoch, max_epochs=plan.epochs, witnesses=run.witnesses, witness_log=run.log,
        future_sizes=[len(F) for F in run.hats], spanner_sizes=chosen.sampler.spanner_sizes, spanner_swaps=chosen.swaps,
        miss_rates=chosen.miss, heldout_residuals=chosen.resid, lp_solves=run.lp_solves,
        lp_infeasible=run.lp_infeasible, dropped_epochs=run.dropped, max_gaps=run.max_gaps, queries=counter.queries,
        requests=cache.requests, cache_hits=cache.hits, samples=counter.samples, threshold=plan.threshold,
        slack_tol=chosen.sampler.slack_tol, beta=settings.beta, rank=settings.rank, n_validation=plan.n_validation,
        n_spanner=plan.n_spanner, n_heldout=plan.n_heldout, witness_rule=settings.witness_rule,
        witnesses_per_epoch=settings.witnesses_per_epoch, lp_seconds=run.lp_seconds,
        seconds=time.perf_counter() - start, failure=failure, max_slacks=run.max_slacks,
        spanner_fallbacks=run.spanner_fallbacks, lp_cold_restarts=run.lp_cold_restarts, settings=settings,
    )
    if not accepted:
        warnings.warn(f"learn_approx: {failure}", ApproxNotAcceptedWarning, stacklevel=3)
    return chosen.sampler, report
