"""The approximate-rank query learner of paper B (arXiv 2512.09892; spec "Main loop").

Epochs k = 1 … K: rebuild F̃_s and a DistSpanner per level, draw fresh sample paths, solve the chain
LP of every prefix, and compare, along each path, the coefficients of level s pushed from level s − 1
with those of level s itself on longer futures. A disagreement above the threshold g is a *witness*:
a word the representative futures F̂_s missed. It is added and the next epoch starts. An epoch with no
witness returns the learned :class:`~logitrank.algorithms.LPSampler`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from logitrank._validation import as_generator, check_int, check_real
from logitrank.synth import CountingOracle, LanguageModel

from ._dist_spanner import dist_spanner, word_rows
from ._lp_sampler import LevelData, LPSampler, _check_slack_tol, extended_words
from ._query_cache import QueryCache

__all__ = ["learn_approx", "ApproxLearnReport", "default_threshold", "default_n_validation"]

WITNESS_RULES = ("first", "largest")
WITNESSES_PER_EPOCH = ("one", "per_level")


def default_threshold(epsilon: float, horizon: int) -> float:
    """g = ε / (32 T²), the validation threshold of the spec's restatement ("Parameters").

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
    (The spec's restatement uses n ≈ (1/g)·ln(32KT/δ) with g = ε/(32T²): about 10⁵ paths, each
    needing T LP solves, at our smallest sizes — far beyond seconds.)

    Examples
    --------
    >>> default_n_validation(0.1, 19, 0.05)
    60
    """
    return max(1, math.ceil(math.log(epochs / delta) / epsilon))


@dataclass
class ApproxLearnReport:
    """What :func:`learn_approx` did, what it cost, and how it failed if it did.

    Attributes
    ----------
    accepted : bool
        An epoch passed validation. False is the spec's non-convergence signature: ``failure`` says
        why and the returned sampler is the last epoch's, unvalidated.
    epochs, max_epochs : int
        Epochs run, and K.
    witnesses : list of int, levels s = 1 … T
        Words added to F̂_s (the elliptical-potential count, claim B2).
    witness_log : list of (epoch, level, word, gap)
    future_sizes : list of int, levels 1 … T
        |F̂_s| at the end (a fallback sampler, see step 5, may hold fewer).
    spanner_sizes, spanner_swaps : list of int, levels 1 … T − 1 (last epoch)
    miss_rates, heldout_residuals : list of float, levels 1 … T − 1 (last epoch)
        η per level (0 at level 1) and the largest relative residual of a held-out row.
    lp_solves, lp_infeasible : int
        Distinct chain LPs solved during validation over all epochs, and those infeasible.
    dropped_epochs : list of int
        Epochs dropped because some validation LP was infeasible (spec step 3).
    max_gaps : list of float, one per epoch
        Largest |pushed − direct| seen (nan for a dropped epoch); includes words already in F̂_s,
        whose gaps are chain slack rather than witnesses.
    queries : int
        Distinct logit queries that reached the oracle (repeats are served by a QueryCache).
    requests, cache_hits : int
        All lookups, and those answered from memory.
    samples : int
        Sequences drawn from the oracle (spanner, held-out and validation samples).
    threshold, slack_tol, beta : float
    rank, n_validation, n_spanner, n_heldout : int
    witness_rule, witnesses_per_epoch : str
    lp_seconds, seconds : float
        Time inside the LP solver, and wall time.
    failure : str
        "" when accepted, else the failure signature in words.
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


def _build_levels(cache, hats, *, V, T, beta, rank, tol, samples, heldout):
    """Spec step 1: F̃_s and DistSpanner(s) for s = 2 … T − 1 (level 1 is the empty history)."""
    levels, swaps, miss, resid = [], [], [], []
    for s in range(1, max(1, T - 1) + 1):
        tilde = extended_words(hats[s - 1], hats[s] if s < T else [], V)
        if s == 1:
            rows = word_rows(cache, torch.zeros(1, 0, dtype=torch.long), tilde)  # (1, |F̃_1|)
            levels.append(LevelData([()], list(hats[0]), tilde, rows))
            swaps.append(0), miss.append(0.0), resid.append(0.0)
            continue
        ds = dist_spanner(cache, s, tilde, beta=beta, rank=rank, tol=tol, samples=samples, heldout=heldout)
        if ds.size == 0:  # every sampled row is zero (uniform next tokens): keep one zero row
            ds_hist, ds_rows = [tuple(samples[0, : s - 1].tolist())], torch.zeros(1, len(tilde), dtype=torch.float64)
        else:
            ds_hist, ds_rows = ds.histories, ds.rows
        levels.append(LevelData(ds_hist, list(hats[s - 1]), tilde, ds_rows))
        swaps.append(ds.spanner.swaps), miss.append(ds.miss_rate), resid.append(ds.heldout_residual)
    return levels, swaps, miss, resid


def _level_logits(cache, hist: list, paths: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """L(h_j ∘ y[u, start:stop]) for every history h_j and path u: → (n, m, V) float64."""
    n, m = paths.shape[0], len(hist)
    H = torch.tensor(hist, dtype=torch.long).reshape(m, len(hist[0]))  # (m, |h|)
    seg = paths[:, start:stop]  # (n, stop − start)
    prefixes = torch.cat([H.unsqueeze(0).expand(n, -1, -1), seg.unsqueeze(1).expand(-1, m, -1)], dim=2)  # (n, m, len)
    L = cache.logits(prefixes.reshape(n * m, -1)).to(torch.float64)  # (n·m, V)
    return L.reshape(n, m, -1)  # (n, m, V)


def _validate(cache, sampler: LPSampler, paths: torch.Tensor, coefs: dict, hats, g: float):
    """Spec step 4: every (u, t, s, r, a) with |pushed − direct| > g on a word not yet in F̂_s.

    Returns (candidates as (u, t, s, r, a, gap, word) in the fixed order (u, t, s, r, a), largest gap).
    """
    n, T = paths.shape
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


def learn_approx(
    oracle: LanguageModel,
    *,
    rank: int,
    epsilon: float,
    beta: float = 2.0,
    threshold: float | None = None,
    epochs: int | None = None,
    n_validation: int | None = None,
    n_spanner: int | None = None,
    n_heldout: int | None = None,
    delta: float = 0.05,
    slack_tol: float | None = None,
    tol: float | None = None,
    witness_rule: str = "first",
    witnesses_per_epoch: str = "one",
    on_infeasible: str = "uniform",
    solver_options: dict | None = None,
    generator,
) -> tuple[LPSampler, ApproxLearnReport]:
    """Learn an approximately low-logit-rank model from logit queries (paper B, main algorithm).

    Steps (numbered as in the spec's "Main loop"), per epoch k = 1 … K:

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
       slack above ``slack_tol``, or no solver solution), the epoch is dropped (recorded in
       ``dropped_epochs``) and the next one starts with fresh samples and unchanged futures.
    4. Validation: for every (u, t), level 2 <= s <= t, end r ∈ [s, t+1] and token a, with
       w = y_{s:r−1}·a, compare pushed Σ_j c_{s−1,j} L(h_{s−1,j}∘y_{s−1}∘w) with direct
       Σ_i c_{s,i} L(h_{s,i}∘w) (both through the query cache). Level s = 1 is skipped: c_1 = e_1
       and both sides are the true L(w). A gap above g on a word not yet in F̂_s is a witness;
       gaps on words already in F̂_s are chain slack, governed by step 3. [choice]
       ``witness_rule`` picks the first witness in the order (u, t, s, r, a) (the spec) or the
       largest gap; ``witnesses_per_epoch`` adds one witness per epoch (the spec) or one per level.
    5. No witness: return the learned sampler. After K epochs without acceptance the spec reports
       non-convergence: ``report.accepted = False`` and ``report.failure`` says why. [choice] The
       sampler returned then is that of the last epoch whose validation LPs were all feasible (the
       last epoch's when none was): a dropped epoch's sampler answers the failing prefixes with
       uniform tokens, while a rejected one only missed a witness.

    Parameters
    ----------
    oracle : LanguageModel with a finite horizon T
        Queried for logits and samples only, through a :class:`logitrank.synth.CountingOracle` under a
        :class:`QueryCache` (``report.queries`` counts distinct prefixes).
    rank : int >= 1
        d, the cap on every level's spanner.
    epsilon : float in (0, 1)
        Target TV; sets the defaults of ``threshold`` and ``n_validation``.
    beta : float >= 1
        The spanner constant and the LP box ‖c_s‖_∞ <= β (spec default 2).
    threshold : float > 0, optional
        g. Default :func:`default_threshold` = ε/(32T²).
    epochs : int >= 1, optional
        K. Default T·rank + 1: with exact rank a level needs at most rank − 1 witnesses (each raises
        the rank of R_s[:, F̂_s], which starts >= 1), so the spec's Θ(T·d·log(·)) with the log factor
        set to 1 leaves room for all of them, one per epoch, plus the accepting epoch.
    n_validation : int >= 1, optional
        n. Default :func:`default_n_validation` = ⌈ln(K/δ)/ε⌉.
    n_spanner, n_heldout : int >= 1, optional
        Samples per epoch for the spanners and for the miss rate η. Default ⌈rank·T/ε⌉ each: a
        leave-one-out heuristic that keeps the expected miss rate near rank/n_spanner <= ε/T.
    delta : float in (0, 1)
        Failure probability in ``default_n_validation``.
    slack_tol : float >= 0 or math.inf, optional
        Largest chain slack of a feasible LP. Default g: a slack above the validation threshold would
        be a disagreement the witnesses cannot repair. ``math.inf`` keeps every solved LP.
    tol : float, optional
        Rank tolerance of the spanners (see :func:`barycentric_spanner`).
    witness_rule : "first" | "largest"
    witnesses_per_epoch : "one" | "per_level"
    on_infeasible : "uniform" | "raise"
        Behaviour of the returned sampler on prefixes whose LP is infeasible (see :class:`LPSampler`).
    solver_options : dict, optional
        Passed to cvxpy's ``solve`` (HiGHS options).
    generator : torch.Generator or int
        All randomness (samples of the oracle).

    Returns
    -------
    (LPSampler, ApproxLearnReport)

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
    T = oracle.horizon
    if T is None:
        raise ValueError("learn_approx needs a model with a finite horizon; got horizon=None")
    V = oracle.vocab_size
    rank = check_int("rank", rank, minimum=1)
    epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0, low_open=True, high_open=True)
    beta = check_real("beta", beta, low=1.0)
    delta = check_real("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    g = default_threshold(epsilon, T) if threshold is None else check_real("threshold", threshold, low=0.0, low_open=True)
    K = T * rank + 1 if epochs is None else check_int("epochs", epochs, minimum=1)
    n_val = default_n_validation(epsilon, K, delta) if n_validation is None else check_int("n_validation", n_validation, minimum=1)
    n_sp_default = math.ceil(rank * T / epsilon)
    n_sp = n_sp_default if n_spanner is None else check_int("n_spanner", n_spanner, minimum=1)
    n_ho = n_sp if n_heldout is None else check_int("n_heldout", n_heldout, minimum=1)
    slack_tol = g if slack_tol is None else _check_slack_tol(slack_tol)
    if witness_rule not in WITNESS_RULES:
        raise ValueError(f"witness_rule must be one of {WITNESS_RULES}; got {witness_rule!r}")
    if witnesses_per_epoch not in WITNESSES_PER_EPOCH:
        raise ValueError(f"witnesses_per_epoch must be one of {WITNESSES_PER_EPOCH}; got {witnesses_per_epoch!r}")
    device = torch.device(getattr(oracle, "device", "cpu"))
    gen = as_generator(generator, device)
    start = time.perf_counter()
    counter = CountingOracle(oracle)
    cache = QueryCache(counter)
    hats = [[(z,) for z in range(V)] for _ in range(T)]  # 0. F̂_s, s = 1 … T
    witnesses = [0] * T
    log, dropped, max_gaps = [], [], []
    lp_solves = lp_infeasible = 0
    lp_seconds = 0.0
    accepted = False
    sampler = fallback = None  # fallback: the last epoch whose validation LPs were all feasible
    swaps = miss = resid = []
    L = max(1, T - 1)
    for epoch in range(1, K + 1):
        # 1. Spanners for every level on F̃_s.
        samples = cache.sample(n_sp, generator=gen).cpu()  # (N, T)
        heldout = cache.sample(n_ho, generator=gen).cpu()  # (N', T)
        levels, swaps, miss, resid = _build_levels(cache, hats, V=V, T=T, beta=beta, rank=rank, tol=tol,
                                                   samples=samples, heldout=heldout)
        sampler = LPSampler(levels, vocab_size=V, horizon=T, beta=beta, slack_tol=slack_tol,
                            on_infeasible=on_infeasible, solver_options=solver_options)
        # 2. Fresh sample paths.
        paths = cache.sample(n_val, generator=gen).cpu()  # (n, T)
        # 3. The chain LP of every prefix y_{1:t}, t = 1 … T − 1 (one solve per distinct y_{1:t−1}).
        coefs: dict[int, dict[int, torch.Tensor]] = {}
        feasible = True
        for t in range(1, L + 1 if T > 1 else 1):
            per_path = [sampler.reconstruct(paths[u, :t].tolist()) for u in range(n_val)]
            feasible &= all(rec.feasible for rec in per_path)
            if feasible:
                coefs[t] = {s: torch.stack([rec.coefficients[s - 1] for rec in per_path]) for s in range(1, t + 1)}  # (n, m_s)
        lp_solves += sampler.lp_solves
        lp_infeasible += sampler.lp_infeasible
        lp_seconds += sampler.lp_seconds
        if not feasible:
            dropped.append(epoch)
            max_gaps.append(float("nan"))
            continue
        fallback = (sampler, swaps, miss, resid)
        # 4. Validation.
        candidates, worst = _validate(cache, sampler, paths, coefs, hats, g) if T > 2 else ([], 0.0)
        max_gaps.append(worst)
        if not candidates:
            accepted = True  # 5.
            break
        for u, t, s, r, a, gap, word in _pick(candidates, witness_rule, witnesses_per_epoch):
            hats[s - 1].append(word)
            witnesses[s - 1] += 1
            log.append((epoch, s, word, gap))
    failure = ""
    if not accepted and fallback is not None:
        sampler, swaps, miss, resid = fallback
    if not accepted:
        returned = "that of the last epoch with feasible LPs" if fallback else "the last epoch's"
        failure = (
            f"non-convergence: no epoch passed validation in K={K} epochs; {len(dropped)} dropped for "
            f"infeasible LPs (LP infeasibility rate {lp_infeasible / max(lp_solves, 1):.3g}), "
            f"{len(log)} witnesses added (largest gap of the last validated epoch "
            f"{next((x for x in reversed(max_gaps) if not math.isnan(x)), float('nan')):.3g} vs g={g:.3g}). "
            f"The returned sampler is {returned} and was not validated."
        )
    report = ApproxLearnReport(
        accepted=accepted, epochs=epoch, max_epochs=K, witnesses=witnesses, witness_log=log,
        future_sizes=[len(F) for F in hats], spanner_sizes=sampler.spanner_sizes, spanner_swaps=swaps,
        miss_rates=miss, heldout_residuals=resid, lp_solves=lp_solves, lp_infeasible=lp_infeasible,
        dropped_epochs=dropped, max_gaps=max_gaps, queries=counter.queries, requests=cache.requests,
        cache_hits=cache.hits, samples=counter.samples, threshold=g, slack_tol=slack_tol, beta=beta,
        rank=rank, n_validation=n_val, n_spanner=n_sp, n_heldout=n_ho, witness_rule=witness_rule,
        witnesses_per_epoch=witnesses_per_epoch, lp_seconds=lp_seconds,
        seconds=time.perf_counter() - start, failure=failure,
    )
    return sampler, report
