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

import math
import time
import warnings
from dataclasses import dataclass, field

import torch

from logitrank._validation import as_generator, check_model
from logitrank.synth import CountingOracle, LanguageModel

from ._approx_report import ApproxLearnReport, ApproxNotAcceptedWarning
from ._approx_settings import ApproxSettings, default_slack_tol, settings_from
from ._certificate import TVCertificate, tv_certificate, tv_statistic
from ._dist_spanner import dist_spanner, word_rows
from ._lp_sampler import LevelData, LPSampler, UniformFallbackWarning, extended_words
from ._query_cache import QueryCache

__all__ = ["learn_approx"]

@dataclass
class _Epoch:
    """One epoch's learned state: the sampler and its spanner diagnostics."""

    sampler: LPSampler
    swaps: list
    miss: list
    resid: list
    fallback_levels: list
    number: int = 0
    cert: TVCertificate | None = None


@dataclass
class _Run:
    """What the epochs accumulate (mutable; one per call of :func:`learn_approx`)."""

    hats: list
    witnesses: list
    log: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    max_gaps: list = field(default_factory=list)
    max_slacks: list = field(default_factory=list)
    mean_gaps: list = field(default_factory=list)
    cert_estimates: list = field(default_factory=list)
    cert_bounds: list = field(default_factory=list)
    cert_queries: int = 0
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

    Returns (candidates as (u, t, s, r, a, gap, word) in the fixed order (u, t, s, r, a), largest gap,
    mean gap over every compared entry, and per level s the largest gap on words already in F̂_s —
    the chain slack the LP left there, an estimate of the approximation's noise floor at that level).
    """
    T = paths.shape[1]
    L = max(1, T - 1)
    found, worst, total, count = [], 0.0, 0.0, 0
    floor: dict[int, float] = {}
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
                total, count = total + float(gap.sum()), count + gap.numel()
                for u, a in (gap > g).nonzero().tolist():
                    word = tuple(paths[u, s - 1 : r - 1].tolist()) + (a,)
                    if word not in in_hat:
                        found.append((u, t, s, r, a, float(gap[u, a]), word))
                    else:
                        floor[s] = max(floor.get(s, 0.0), float(gap[u, a]))
    found.sort(key=lambda c: c[:5])
    return found, worst, (total / count if count else 0.0), floor


def _pick(candidates: list, rule: str, per_epoch: str) -> list:
    """The witnesses to add: one overall, or one per level; the first in order, or the largest gap."""
    if per_epoch == "one":
        groups = [candidates]
    else:
        levels = sorted({c[2] for c in candidates})
        groups = [[c for c in candidates if c[2] == s] for s in levels]
    pick = (lambda grp: grp[0]) if rule == "first" else (lambda grp: max(grp, key=lambda c: c[5]))
    return [pick(grp) for grp in groups if grp]


def _eligible(candidates: list, run: _Run, floor: dict, settings: ApproxSettings) -> list:
    """Candidates that may become witnesses: above the level's noise floor (``noise_floor``) and at a
    level below its cap (``witness_cap="rank"``: at most ``rank`` witnesses per level)."""
    out = candidates
    if settings.noise_floor:
        out = [c for c in out if c[5] > floor.get(c[2], 0.0)]
    if settings.witness_cap == "rank":
        out = [c for c in out if run.witnesses[c[2] - 1] < settings.rank]
    return out


def _add_witnesses(run: _Run, epoch: int, candidates: list, settings: ApproxSettings) -> int:
    """Step 4, end: add the picked witnesses to F̂_s for the next epoch; → how many were added."""
    picked = _pick(candidates, settings.witness_rule, settings.witnesses_per_epoch)
    for _u, _t, s, _r, _a, gap, word in picked:
        run.hats[s - 1].append(word)
        run.witnesses[s - 1] += 1
        run.log.append((epoch, s, word, gap))
    return len(picked)


def _certify(cache, counter, sampler: LPSampler, gen, *, n: int, delta: float, settings: ApproxSettings,
             horizon: int) -> tuple[TVCertificate, int]:
    """The held-out TV certificate of one epoch's sampler (:mod:`~logitrank.algorithms._certificate`).

    n fresh paths y ~ P through the oracle, drawn after the sampler is fixed; log P(y) from the
    oracle's logits along y (cached, counted), log Q(y) from the sampler. → (certificate, distinct
    oracle queries it made). Fallback prefixes met on these paths are counted in the sampler's
    ``fallback_prefixes``.
    """
    before = counter.queries
    y = _draw_paths(cache, n, gen)  # (n, T)
    log_p = torch.zeros(n, dtype=torch.float64)
    for t in range(horizon):
        lp = torch.log_softmax(cache.logits(y[:, :t]).to(torch.float64), dim=-1)  # (n, V)
        log_p += lp.gather(1, y[:, t : t + 1]).squeeze(1)
    with warnings.catch_warnings():  # counted below and in the report, not shown per epoch
        warnings.simplefilter("ignore", UniformFallbackWarning)
        log_q = sampler.log_prob(y).to(torch.float64)  # (n,)
    cert = tv_certificate(tv_statistic(log_p, log_q), delta=delta, method=settings.cert_bound, horizon=horizon,
                          oracle_error=settings.oracle_error)
    return cert, counter.queries - before


def _failure(run: _Run, K: int, g: float, chosen: _Epoch, epoch: int, settings: ApproxSettings, stopped_early: bool) -> str:
    """The non-convergence signature in words."""
    last_gap = next((x for x in reversed(run.max_gaps) if not math.isnan(x)), float("nan"))
    ran = (f"stopped at epoch {epoch} of K={K} after {settings.patience} epochs without a witness or a smaller "
            "certified bound"
           if stopped_early else f"K={K} epochs")
    parts = [(f"non-convergence: no epoch passed the {settings.acceptance} rule in {ran}; {len(run.dropped)} dropped for "
              f"infeasible LPs (LP infeasibility rate {run.lp_infeasible / max(run.lp_solves, 1):.3g})")]
    if run.spanner_fallbacks:
        parts.append(f"{len(run.spanner_fallbacks)} spanner level(s) replaced by a zero row (epoch, level) "
                     f"{run.spanner_fallbacks[:4]}")
    parts.append(f"{len(run.log)} witnesses added (largest gap of the last validated epoch {last_gap:.3g} vs g={g:.3g})")
    if chosen.cert is not None:
        returned = (f"that of epoch {chosen.number}, the smallest certified bound: TV <= {chosen.cert.bound:.3g} "
                    f"(estimate {chosen.cert.estimate:.3g}) at level {chosen.cert.delta:.3g}, vs epsilon={settings.epsilon:g}")
    else:
        returned = f"that of epoch {chosen.number} (no epoch had feasible LPs to certify)"
    return "; ".join(parts) + f". The returned sampler is {returned}; it was not accepted."


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
    3½. The certificate (``acceptance`` "certificate" or "either"; computed for every validated
       epoch whatever the rule, to choose the sampler returned on failure): ``n_cert`` fresh paths
       y ~ P, x = (1 − Q(y)/P(y))₊ with E_P[x] = TV(P, Q), and an upper confidence bound at level
       δ/K (:func:`~logitrank.algorithms.tv_certificate`). A bound ≤ ε with no fallback accepts the
       epoch, before step 4 is run. This replaces the restatement's acceptance for the approximate
       regime (see :class:`ApproxSettings` ``acceptance`` for the measured reason); the
       restatement's validation stays available and is still what chooses witnesses.
    4. Validation: for every (u, t), level 2 <= s <= t, end r ∈ [s, t+1] and token a, with
       w = y_{s:r−1}·a, compare pushed Σ_j c_{s−1,j} L(h_{s−1,j}∘y_{s−1}∘w) with direct
       Σ_i c_{s,i} L(h_{s,i}∘w) (both through the query cache). Level s = 1 is skipped: c_1 = e_1
       and both sides are the true L(w). A gap above g on a word not yet in F̂_s is a witness
       candidate; gaps on words already in F̂_s are chain slack, governed by step 3. [choice]
       ``witness_rule`` picks the first witness in the order (u, t, s, r, a) (the restatement) or the
       largest gap; ``witnesses_per_epoch`` adds one witness per epoch (the restatement) or one per
       level. Deviation, measured in ``benchmarks/bench_certificate.py``: by default a candidate must
       also exceed its level's chain slack (``noise_floor``) and a level stops at ``rank`` witnesses
       (``witness_cap``); the restatement adds every gap above g, which for an approximately low-rank
       model adds noise "witnesses" every epoch (8–12 at a level where d − 1 suffice).
    5. Acceptance (``acceptance``) with no fallback (every validation and certificate LP feasible,
       no zero-row spanner level): return the learned sampler, ``report.accepted = True``. Otherwise
       the run ends after K epochs, or earlier after ``patience`` epochs in a row that neither added
       a witness nor gave a smaller certified bound (the futures are then fixed and further epochs
       only redraw samples), and reports non-convergence as the restatement does
       (docs/approx-learner.md): ``report.accepted = False``, ``report.failure`` says why, and an
       :class:`ApproxNotAcceptedWarning` is issued. The sampler returned then is the epoch's with
       the smallest certified bound (``report.returned_epoch``, ``report.tv_bound``), the last
       epoch's when none was certified.

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
    >>> rep.accepted, rep.accepted_by, rep.lp_infeasible, rep.tv_bound < 0.1
    (True, 'certificate', 0, True)
    >>> 0.5 * (truth.distribution() - learned.distribution()).abs().sum().item() <= rep.tv_bound
    True

    The restatement's acceptance (validation only; exact at exact rank):

    >>> old = dict(acceptance="validation", witness_cap="none", noise_floor=False, patience=None, witnesses_per_epoch="one")
    >>> learned, rep = learn_approx(truth, rank=2, epsilon=0.1, n_validation=8, n_spanner=16, generator=0, **old)
    >>> rep.accepted_by, 0.5 * (truth.distribution() - learned.distribution()).abs().sum().item() < 1e-9
    ('validation', True)
    """
    settings = settings_from(settings, options)
    check_model("oracle", oracle, needs=("vocab_size", "horizon", "logits"))
    T = oracle.horizon
    if T is None:
        raise ValueError("learn_approx needs a model with a finite horizon; got horizon=None")
    V = oracle.vocab_size
    plan = settings.resolved(T)
    gen = as_generator(generator, torch.device(getattr(oracle, "device", "cpu")))
    # the certificate draws from its own stream, so certifying never changes what is learned (the
    # learning draws are those of the restatement whatever n_cert); derived from the same seed
    cert_gen = torch.Generator(gen.device).manual_seed((gen.initial_seed() * 0x9E3779B97F4A7C15 + 21) % 2**63)
    start = time.perf_counter()
    counter = CountingOracle(oracle)
    cache = QueryCache(counter)
    run = _Run(hats=[[(z,) for z in range(V)] for _ in range(T)], witnesses=[0] * T)  # 0. F̂_s, s = 1 … T
    last = best = None  # the last epoch, and the epoch with the smallest certified bound
    accepted_by, since_best, stopped_early = "", 0, False
    cert_delta = settings.delta / plan.epochs  # a union bound over the K epochs' certificates
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
        last = _Epoch(sampler, swaps, miss, resid, fell_back, number=epoch)
        run.spanner_fallbacks += [(epoch, s) for s in fell_back]
        paths = _draw_paths(cache, plan.n_validation, gen)  # 2. (n, T)
        coefs, worst_slack = _solve_chains(sampler, paths)  # 3.
        run.max_slacks.append(worst_slack)
        if coefs is None:
            _count_lps(run, sampler)
            run.dropped.append(epoch)
            for lst in (run.max_gaps, run.mean_gaps, run.cert_estimates, run.cert_bounds):
                lst.append(float("nan"))
            since_best += 1
            if _out_of_patience(settings, since_best, best):
                stopped_early = epoch < plan.epochs
                break
            continue
        cert, cert_queries = _certify(cache, counter, sampler, cert_gen, n=plan.n_cert, delta=cert_delta,
                                      settings=settings, horizon=T)  # 3½.
        last.cert = cert
        run.cert_queries += cert_queries
        run.cert_estimates.append(cert.estimate)
        run.cert_bounds.append(cert.bound)
        if best is None or cert.bound < best.cert.bound:
            best, since_best = last, 0
        else:
            since_best += 1
        # the certificate's paths included: its fallback prefixes are counted in sampler.fallback_prefixes
        fallbacks = sampler.lp_infeasible + sampler.fallback_prefixes + len(fell_back)
        if settings.acceptance != "validation" and fallbacks == 0 and cert.certifies(settings.epsilon):
            _count_lps(run, sampler)
            run.max_gaps.append(float("nan"))
            run.mean_gaps.append(float("nan"))
            accepted_by = "certificate"
            break
        if T > 2:  # 4.
            candidates, worst, mean_gap, floor = _validate(cache, sampler, paths, coefs, run.hats, plan.threshold)
        else:
            candidates, worst, mean_gap, floor = [], 0.0, 0.0, {}
        _count_lps(run, sampler)
        run.max_gaps.append(worst)
        run.mean_gaps.append(mean_gap)
        passed = not candidates if settings.validation_statistic == "max" else mean_gap <= plan.threshold
        if settings.acceptance != "certificate" and passed and fallbacks == 0:
            accepted_by = "validation"
            break
        if _add_witnesses(run, epoch, _eligible(candidates, run, floor, settings), settings):
            since_best = 0  # F̂ changed: the next epoch learns something new
        if _out_of_patience(settings, since_best, best):
            stopped_early = epoch < plan.epochs
            break
    return _finish(run, settings, plan, accepted_by, epoch, last, best, counter, cache, start, stopped_early)


def _count_lps(run: _Run, sampler: LPSampler) -> None:
    run.lp_solves += sampler.lp_solves
    run.lp_infeasible += sampler.lp_infeasible
    run.lp_cold_restarts += sampler.lp_cold_restarts
    run.lp_seconds += sampler.lp_seconds


def _out_of_patience(settings: ApproxSettings, since_best: int, best) -> bool:
    return settings.patience is not None and best is not None and since_best >= settings.patience


def _finish(run, settings, plan, accepted_by, epoch, last, best, counter, cache, start, stopped_early):
    """Step 5: pick the sampler to return, write the report, warn when not accepted."""
    accepted = bool(accepted_by)
    chosen = last if accepted or best is None else best
    failure = "" if accepted else _failure(run, plan.epochs, plan.threshold, chosen, epoch, settings, stopped_early)
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
        accepted_by=accepted_by, returned_epoch=chosen.number, cert_estimates=run.cert_estimates,
        cert_bounds=run.cert_bounds, mean_gaps=run.mean_gaps, n_cert=plan.n_cert, cert_queries=run.cert_queries,
        acceptance=settings.acceptance, cert_bound=settings.cert_bound, stopped_early=stopped_early,
    )
    if not accepted:
        warnings.warn(f"learn_approx: {failure}", ApproxNotAcceptedWarning, stacklevel=3)
    return chosen.sampler, report
