"""The approximate-rank query learner of paper B (arXiv 2512.09892; docs/approx-learner.md, "Main loop").

Epochs k = 1 … K: rebuild F̃_s and a DistSpanner per level, draw fresh sample paths, solve the chain
LP of every prefix, certify the epoch's sampler on held-out paths, and compare, along each path, the
coefficients of level s pushed from level s − 1 with those of level s itself on longer futures. A
disagreement above the threshold g is a *witness*: a word the representative futures F̂_s missed. It
is added and the next epoch starts. An epoch is accepted only when its held-out TV certificate is
at most ε (and it had no fallback); the per-entry validation can veto an epoch, never accept one.

The settings live in the validated frozen dataclass :class:`ApproxSettings`; :func:`learn_approx`
reads them from ``settings=`` or from keywords (``until``, ``max_queries`` and ``widening`` among them),
its randomness (``generator``, ``cert_generator``) and ``on_epoch`` as keywords, and runs the named steps below, one
function each: :func:`_learn_epoch` (build), :func:`_draw_paths` (draw), :func:`_solve_chains`
(solve), :func:`_certify_epoch` (certify), :func:`_validate_epoch` (validate), :func:`_accepts` and
:func:`_add_witnesses` (accept or refine), and :func:`_finish` (the report and the warning).
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
from ._approx_run import check_on_epoch
from ._approx_settings import ApproxSettings, default_slack_tol, settings_from
from ._certificate import TVCertificate, oracle_widening, tv_certificate, tv_statistic
from ._dist_spanner import dist_spanner, word_rows
from ._lp_sampler import LevelData, LPSampler, UniformFallbackWarning, extended_words
from ._query_cache import QueryCache

__all__ = ["learn_approx"]

NAN = float("nan")


@dataclass
class _Epoch:
    """One epoch's learned state: the sampler, its spanner diagnostics and its judgement."""

    sampler: LPSampler
    swaps: list
    miss: list
    resid: list
    fallback_levels: list
    number: int = 0
    cert: TVCertificate | None = None
    clean: bool = False  # no fallback of any kind: set when certified (later LP solves cannot change it)
    verdict: str = ""  # what _accepts said of it: "certificate", "validation" or "" (not acceptable)


@dataclass
class _Context:
    """One call's fixed parts: the settings, the oracle behind its cache, the random streams, the options."""

    settings: ApproxSettings
    plan: object  # ApproxSettings.resolved(T)
    V: int
    T: int
    counter: CountingOracle
    cache: QueryCache
    gen: torch.Generator
    cert_gen: torch.Generator
    cert_delta: float
    until: str
    max_queries: int | None
    widening: str
    on_epoch: object
    start: float


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
    validated: list = field(default_factory=list)
    verdicts: list = field(default_factory=list)
    epoch_queries: list = field(default_factory=list)
    cert_queries: int = 0
    spanner_fallbacks: list = field(default_factory=list)
    lp_solves: int = 0
    lp_infeasible: int = 0
    lp_cold_restarts: int = 0
    lp_seconds: float = 0.0
    last: _Epoch | None = None
    best: _Epoch | None = None  # the smallest certified bound
    best_ok: _Epoch | None = None  # the smallest certified bound of an acceptable epoch (until="budget")
    since_best: int = 0
    accepted_by: str = ""  # set when until="accept" stops at an accepted epoch


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
                _sort_gaps(found, floor, gap, paths, (t, s, r), in_hat, g)
    found.sort(key=lambda c: c[:5])
    return found, worst, (total / count if count else 0.0), floor


def _sort_gaps(found: list, floor: dict, gap: torch.Tensor, paths: torch.Tensor, tsr: tuple, in_hat: set, g: float) -> None:
    """Entries of one (t, s, r) block above g: a candidate on a new word, chain slack on a word of F̂_s."""
    t, s, r = tsr
    for u, a in (gap > g).nonzero().tolist():
        word = tuple(paths[u, s - 1 : r - 1].tolist()) + (a,)
        if word not in in_hat:
            found.append((u, t, s, r, a, float(gap[u, a]), word))
        else:
            floor[s] = max(floor.get(s, 0.0), float(gap[u, a]))


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


def learn_approx(
    oracle: LanguageModel,
    settings: ApproxSettings | None = None,
    *,
    generator,
    cert_generator=None,
    on_epoch=None,
    **options,
) -> tuple[LPSampler, ApproxLearnReport]:
    """Learn an approximately low-logit-rank model from logit queries (paper B, main algorithm).

    Named steps per epoch k = 1 … K (the restatement's "Main loop" numbers in brackets):

    * init [0] — F̂_s starts as every single token at every level. [choice] The printed algorithm may
      seed from one sample; all single tokens is simpler and sound. It is not a parameter: the
      readout ℓ(z) = Σ_i c_{t,i} R_t[i, y_t·z] reads the word y_t·z ∈ Σ·F̂_{t+1} for every z, so every
      single token must be in F̂_{t+1} whatever the seed.
    * build [1] (:func:`_learn_epoch`) — F̃_s = F̂_s ∪ Σ·F̂_{s+1}; :func:`dist_spanner` for s = 2 … T − 1,
      capped at ``rank`` rows. Level T (histories of length T − 1) is skipped: the LP of y_{1:t} needs
      levels 1 … t and t <= T − 1, so its rows would never be read. [choice] One batch of ``n_spanner``
      (and ``n_heldout``) samples per epoch serves every level.
    * draw [2] — ``n_validation`` fresh sample paths y^(u).
    * solve [3] (:func:`_solve_chains`) — the chain LP of every y^(u)_{1:t}, t < T (:class:`LPSampler`).
      If any is infeasible (max slack above ``slack_tol``, default 2λ — see :func:`default_slack_tol`),
      the epoch is dropped (``dropped_epochs``) and the next one starts with fresh samples and
      unchanged futures.
    * certify [new] (:func:`_certify_epoch`) — ``n_cert`` fresh paths y ~ P from the certificate's own
      stream (``cert_generator``), x = (1 − Q(y)/P(y))₊ with E_P[x] = TV(P, Q), and an upper confidence
      bound at level δ/K (:func:`~logitrank.algorithms.tv_certificate`), widened for a noisy oracle by
      :func:`~logitrank.algorithms.oracle_widening` (``oracle_error``, ``widening``). Every epoch with
      feasible LPs is certified; the K levels δ/K make all certified bounds hold at once with
      probability >= 1 − δ, so the minimum over epochs is a valid bound too.
    * validate [4] (:func:`_validate_epoch`) — for every (u, t), level 2 <= s <= t, end r ∈ [s, t+1]
      and token a, with w = y_{s:r−1}·a, compare pushed Σ_j c_{s−1,j} L(h_{s−1,j}∘y_{s−1}∘w) with
      direct Σ_i c_{s,i} L(h_{s,i}∘w) (both through the query cache). Level s = 1 is skipped (c_1 = e_1:
      both sides are the true L(w)). A gap above g on a word not yet in F̂_s is a witness candidate;
      gaps on words already in F̂_s are chain slack, governed by "solve". [choice] ``witness_rule``
      (first in the order (u, t, s, r, a), the restatement's, or largest gap), ``witnesses_per_epoch``
      (one, the restatement's, or one per level); by default a candidate must exceed its level's chain
      slack (``noise_floor``), and ``witness_cap`` can stop a level at ``rank`` witnesses (measured in
      ``benchmarks/bench_certificate.py``). The validation's verdict (``validation_statistic`` against g)
      is reported per epoch (``report.validation_passed``) as a diagnostic.
    * accept or refine [5] (:func:`_accepts`, :func:`_add_witnesses`) — an epoch is *acceptable* when its
      certified bound is <= ε, it had no fallback (every LP of its validation and certificate
      feasible, no zero-row spanner level) and, under ``acceptance="validation"``, its validation
      passed too (a pre-filter that can only reject). ``acceptance="either"`` accepts exactly what
      ``"certificate"`` does (before round 2 it let the validation accept past the certificate,
      which was unsound). With ``until="accept"`` the first acceptable epoch is returned (the
      certificate rules accept before validating); otherwise the epoch's witnesses are added.

    The run ends at an accepted epoch (``until="accept"``), after K epochs, after ``patience`` epochs in
    a row that neither added a witness nor gave a smaller certified bound, or when ``max_queries``
    distinct queries are spent (checked before each epoch after the first). With ``until="budget"``
    it then returns the acceptable epoch with the smallest certified bound (``report.accepted`` True),
    or, when no epoch was acceptable, the epoch with the smallest certified bound, not accepted —
    which is also what ``until="accept"`` returns when nothing was accepted. A run not accepted
    reports non-convergence as the restatement does (docs/approx-learner.md): ``report.failure``
    says why and an :class:`ApproxNotAcceptedWarning` is issued. Soundness by construction:
    ``report.accepted`` implies ``report.tv_bound <= epsilon``.

    Parameters
    ----------
    oracle : LanguageModel with a finite horizon T
        Queried for logits and samples only, through a :class:`logitrank.synth.CountingOracle` under a
        :class:`QueryCache` (``report.queries`` counts distinct prefixes).
    settings : ApproxSettings, optional
        All settings (see :class:`ApproxSettings` for each one, its default and its derivation).
    generator : torch.Generator or int
        The learning draws (spanner, held-out and validation samples).
    until, max_queries, widening
        Settings (fields of :class:`ApproxSettings`), given here as keywords like any other:
        ``until="accept"`` (default, the restatement) stops at the first acceptable epoch,
        ``"budget"`` keeps refining while the budgets last and returns the best certified epoch
        (anytime mode); ``max_queries`` is a budget of distinct oracle queries (certificate
        included); ``widening`` ("kl", default, ≈ ξ√T/2, or "log_ratio", 1 − e^{−2Tξ}) is how
        ``oracle_error`` widens each bound (:func:`~logitrank.algorithms.oracle_widening`).
    cert_generator : torch.Generator or int, optional
        The certificate's stream; default derived from ``generator``'s seed. Certifying never
        changes what is learned, so independent ``cert_generator`` streams give independent
        certificates of the same learning run (``report.cert_seed`` records it).
    on_epoch : callable(epoch, sampler, certificate), optional
        Called at the end of every epoch (certificate None for a dropped epoch), e.g. to measure the
        exact TV of every epoch's sampler. It must not change the sampler's settings; the learner
        has recorded the epoch's LP counts and fallbacks before the call.
    **options
        Any field of :class:`ApproxSettings` as a keyword (``rank=``, ``epsilon=``, ``beta=``, …),
        validated into the dataclass; with ``settings`` given they override its fields.

    Returns
    -------
    (LPSampler, ApproxLearnReport)
        The sampler of ``report.returned_epoch`` and what the run did (``ApproxRunReport`` is the
        same class under its round-2 name).

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

    The restatement's acceptance (validation, now also needing the certificate; exact at exact rank):

    >>> old = dict(acceptance="validation", witness_cap="none", noise_floor=False, patience=None, witnesses_per_epoch="one")
    >>> learned, rep = learn_approx(truth, rank=2, epsilon=0.1, n_validation=8, n_spanner=16, generator=0, **old)
    >>> rep.accepted_by, 0.5 * (truth.distribution() - learned.distribution()).abs().sum().item() < 1e-9
    ('validation', True)
    """
    settings = settings_from(settings, options)
    check_on_epoch(on_epoch)
    ctx = _context(oracle, settings, generator, cert_generator, until=settings.until, max_queries=settings.max_queries,
                   widening=settings.widening, on_epoch=on_epoch)
    run = _Run(hats=[[(z,) for z in range(ctx.V)] for _ in range(ctx.T)], witnesses=[0] * ctx.T)  # init: F̂_s, s = 1 … T
    epochs, reason = _run_epochs(ctx, run)
    return _finish(ctx, run, epochs, reason)


def _context(oracle, settings: ApproxSettings, generator, cert_generator, **options) -> _Context:
    """The fixed parts of one call: checks the oracle, resolves the plan, builds both random streams."""
    check_model("oracle", oracle, needs=("vocab_size", "horizon", "logits"))
    T = oracle.horizon
    if T is None:
        raise ValueError("learn_approx needs a model with a finite horizon; got horizon=None")
    plan = settings.resolved(T)
    device = torch.device(getattr(oracle, "device", "cpu"))
    gen = as_generator(generator, device)
    if cert_generator is None:
        # its own stream, so certifying never changes what is learned (the learning draws are those of
        # the restatement whatever n_cert); derived from the learning seed
        cert_gen = torch.Generator(gen.device).manual_seed((gen.initial_seed() * 0x9E3779B97F4A7C15 + 21) % 2**63)
    else:
        try:
            cert_gen = as_generator(cert_generator, device)
        except (TypeError, ValueError) as err:
            raise type(err)(str(err).replace("generator", "cert_generator", 1)) from None
    counter = CountingOracle(oracle)
    return _Context(settings=settings, plan=plan, V=oracle.vocab_size, T=T, counter=counter, cache=QueryCache(counter),
                    gen=gen, cert_gen=cert_gen, cert_delta=settings.delta / plan.epochs,  # a union bound over K epochs
                    start=time.perf_counter(), **options)


def _run_epochs(ctx: _Context, run: _Run) -> tuple[int, str]:
    """Epochs k = 1 … K until a stop; → (epochs run, the stop reason of :data:`STOP_REASONS`)."""
    for epoch in range(1, ctx.plan.epochs + 1):
        if epoch > 1 and ctx.max_queries is not None and ctx.counter.queries >= ctx.max_queries:
            return epoch - 1, "queries"
        if _epoch(ctx, run, epoch):
            return epoch, "accepted"
        if _out_of_patience(ctx.settings, run.since_best, run.best):
            return epoch, "patience"
    return ctx.plan.epochs, "epochs"


def _epoch(ctx: _Context, run: _Run, epoch: int) -> bool:
    """One epoch, every named step; → True when ``until="accept"`` accepts it (the run stops)."""
    ep = _learn_epoch(ctx, run, epoch)  # build
    paths = _draw_paths(ctx.cache, ctx.plan.n_validation, ctx.gen)  # draw: (n, T)
    coefs, worst_slack = _solve_chains(ep.sampler, paths)  # solve
    run.max_slacks.append(worst_slack)
    if coefs is None:
        _drop(run, ep)
        stop = False
    else:
        stop = _judge(ctx, run, ep, paths, coefs)
    run.verdicts.append(ep.verdict)
    run.epoch_queries.append(ctx.counter.queries)
    if ctx.on_epoch is not None:
        ctx.on_epoch(epoch, ep.sampler, ep.cert)
    return stop


def _learn_epoch(ctx: _Context, run: _Run, epoch: int) -> _Epoch:
    """Step build: fresh spanner samples, F̃_s and DistSpanner(s) per level, and the epoch's LP sampler."""
    samples = _draw_paths(ctx.cache, ctx.plan.n_spanner, ctx.gen)  # (N, T)
    heldout = _draw_paths(ctx.cache, ctx.plan.n_heldout, ctx.gen)  # (N', T)
    s = ctx.settings
    levels, swaps, miss, resid, fell_back = _build_levels(ctx.cache, run.hats, V=ctx.V, T=ctx.T, settings=s,
                                                          samples=samples, heldout=heldout)
    slack_tol = ctx.plan.slack_tol
    if slack_tol is None:  # 2λ, λ = the largest absolute stored logit
        slack_tol = default_slack_tol(max(float(lv.rows.abs().max()) for lv in levels))
    sampler = LPSampler(levels, vocab_size=ctx.V, horizon=ctx.T, beta=s.beta, slack_tol=slack_tol,
                        on_infeasible=s.on_infeasible, solver_options=s.solver_options, solver=s.solver)
    run.spanner_fallbacks += [(epoch, level) for level in fell_back]
    run.last = _Epoch(sampler, swaps, miss, resid, fell_back, number=epoch)
    return run.last


def _drop(run: _Run, ep: _Epoch) -> None:
    """An epoch with an infeasible validation LP: recorded, not certified, futures unchanged."""
    _count_lps(run, ep.sampler)
    run.dropped.append(ep.number)
    for lst in (run.max_gaps, run.mean_gaps, run.cert_estimates, run.cert_bounds):
        lst.append(NAN)
    run.validated.append(None)
    run.since_best += 1


def _judge(ctx: _Context, run: _Run, ep: _Epoch, paths: torch.Tensor, coefs: dict) -> bool:
    """Steps certify, validate, accept or refine, for an epoch with feasible LPs; → True to stop (accepted)."""
    _certify_epoch(ctx, run, ep)  # certify
    rule, certified = ctx.settings.acceptance, ep.cert.certifies(ctx.settings.epsilon)
    if ctx.until == "accept":
        ep.verdict = _accepts(rule, certified, None, ep.clean)
        if ep.verdict:  # the certificate rules accept before validating
            _count_lps(run, ep.sampler)
            run.max_gaps.append(NAN), run.mean_gaps.append(NAN), run.validated.append(None)
            run.accepted_by = ep.verdict
            return True
    candidates, floor, passed = _validate_epoch(ctx, run, ep, paths, coefs)  # validate
    ep.verdict = _accepts(rule, certified, passed, ep.clean)  # accept or refine
    if ep.verdict and ctx.until == "accept":
        run.accepted_by = ep.verdict
        return True
    if ep.verdict and (run.best_ok is None or ep.cert.bound < run.best_ok.cert.bound):
        run.best_ok = ep
    if _add_witnesses(run, ep.number, _eligible(candidates, run, floor, ctx.settings), ctx.settings):
        run.since_best = 0  # F̂ changed: the next epoch learns something new
    return False


def _accepts(rule: str, certified: bool, validated: bool | None, clean: bool) -> str:
    """Step accept: → the report's ``accepted_by`` ("certificate" or "validation"), or "" (not acceptable).

    Sound by construction: nothing is acceptable unless the certificate bounds TV <= ε and the epoch
    had no fallback. The validation can only veto: under ``acceptance="validation"`` it must pass too
    (None, not run yet, does not pass); under "certificate" and "either" it is a diagnostic.
    """
    if not (certified and clean):
        return ""
    if rule == "validation":
        return "validation" if validated else ""
    return "certificate"


def _certify(cache, counter, sampler: LPSampler, gen, *, n: int, delta: float, settings: ApproxSettings,
             horizon: int, widening: str = "kl") -> tuple[TVCertificate, int]:
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
                          oracle_error=settings.oracle_error, widening=widening)
    return cert, counter.queries - before


def _certify_epoch(ctx: _Context, run: _Run, ep: _Epoch) -> None:
    """Step certify: the epoch's certificate, whether it had a fallback, and the best epoch so far."""
    cert, queries = _certify(ctx.cache, ctx.counter, ep.sampler, ctx.cert_gen, n=ctx.plan.n_cert,
                             delta=ctx.cert_delta, settings=ctx.settings, horizon=ctx.T, widening=ctx.widening)
    ep.cert = cert
    # the certificate's paths included: its fallback prefixes are counted in sampler.fallback_prefixes
    ep.clean = ep.sampler.lp_infeasible + ep.sampler.fallback_prefixes + len(ep.fallback_levels) == 0
    run.cert_queries += queries
    run.cert_estimates.append(cert.estimate)
    run.cert_bounds.append(cert.bound)
    if run.best is None or cert.bound < run.best.cert.bound:
        run.best, run.since_best = ep, 0
    else:
        run.since_best += 1


def _validate_epoch(ctx: _Context, run: _Run, ep: _Epoch, paths: torch.Tensor, coefs: dict) -> tuple[list, dict, bool]:
    """Step validate: witness candidates, the levels' noise floors, and whether the validation passed.

    With T <= 2 there is no level s >= 2 to compare, so the validation passes vacuously.
    """
    if ctx.T > 2:
        candidates, worst, mean_gap, floor = _validate(ctx.cache, ep.sampler, paths, coefs, run.hats, ctx.plan.threshold)
    else:
        candidates, worst, mean_gap, floor = [], 0.0, 0.0, {}
    _count_lps(run, ep.sampler)
    run.max_gaps.append(worst)
    run.mean_gaps.append(mean_gap)
    passed = not candidates if ctx.settings.validation_statistic == "max" else mean_gap <= ctx.plan.threshold
    run.validated.append(passed)
    return candidates, floor, passed


def _count_lps(run: _Run, sampler: LPSampler) -> None:
    run.lp_solves += sampler.lp_solves
    run.lp_infeasible += sampler.lp_infeasible
    run.lp_cold_restarts += sampler.lp_cold_restarts
    run.lp_seconds += sampler.lp_seconds


def _out_of_patience(settings: ApproxSettings, since_best: int, best) -> bool:
    return settings.patience is not None and best is not None and since_best >= settings.patience


def _chosen(run: _Run) -> tuple[_Epoch, str]:
    """The epoch to return and its ``accepted_by``: the accepted one (``until="accept"``), else the
    acceptable epoch with the smallest certified bound, else the smallest bound (not accepted), else
    the last epoch (none certified)."""
    if run.accepted_by:
        return run.last, run.accepted_by
    if run.best_ok is not None:
        return run.best_ok, run.best_ok.verdict
    return (run.best if run.best is not None else run.last), ""


def _failure(ctx: _Context, run: _Run, chosen: _Epoch, epochs: int, reason: str) -> str:
    """The non-convergence signature in words."""
    settings, K = ctx.settings, ctx.plan.epochs
    last_gap = next((x for x in reversed(run.max_gaps) if not math.isnan(x)), NAN)
    ran = f"K={K} epochs"
    if reason == "patience" and epochs < K:
        ran = f"stopped at epoch {epochs} of K={K} after {settings.patience} epochs without a witness or a smaller certified bound"
    elif reason == "queries":
        ran = f"stopped at epoch {epochs} of K={K}: the query budget max_queries={ctx.max_queries} was spent"
    parts = [(f"non-convergence: no epoch passed the {settings.acceptance} rule in {ran}; {len(run.dropped)} dropped for "
              f"infeasible LPs (LP infeasibility rate {run.lp_infeasible / max(run.lp_solves, 1):.3g})")]
    vetoed = sum(1 for v, b in zip(run.validated, run.cert_bounds) if v and not b <= settings.epsilon)
    if vetoed:
        parts.append(f"{vetoed} epoch(s) passed the validation but not the certificate (bound > epsilon): the "
                     "validation can only veto an epoch, never accept one")
    if run.spanner_fallbacks:
        parts.append(f"{len(run.spanner_fallbacks)} spanner level(s) replaced by a zero row (epoch, level) "
                     f"{run.spanner_fallbacks[:4]}")
    parts.append(f"{len(run.log)} witnesses added (largest gap of the last validated epoch {last_gap:.3g} vs "
                 f"g={ctx.plan.threshold:.3g})")
    if chosen.cert is not None:
        returned = (f"that of epoch {chosen.number}, the smallest certified bound: TV <= {chosen.cert.bound:.3g} "
                    f"(estimate {chosen.cert.estimate:.3g}) at level {chosen.cert.delta:.3g}, vs epsilon={settings.epsilon:g}")
    else:
        returned = f"that of epoch {chosen.number} (no epoch had feasible LPs to certify)"
    return "; ".join(parts) + f". The returned sampler is {returned}; it was not accepted."


def _finish(ctx: _Context, run: _Run, epochs: int, reason: str) -> tuple[LPSampler, ApproxLearnReport]:
    """The end: pick the sampler to return, write the report, warn when not accepted."""
    chosen, accepted_by = _chosen(run)
    accepted, s, plan = bool(accepted_by), ctx.settings, ctx.plan
    failure = "" if accepted else _failure(ctx, run, chosen, epochs, reason)
    report = ApproxLearnReport(
        accepted=accepted, epochs=epochs, max_epochs=plan.epochs, witnesses=run.witnesses, witness_log=run.log,
        future_sizes=[len(F) for F in run.hats], spanner_sizes=chosen.sampler.spanner_sizes, spanner_swaps=chosen.swaps,
        miss_rates=chosen.miss, heldout_residuals=chosen.resid, lp_solves=run.lp_solves,
        lp_infeasible=run.lp_infeasible, dropped_epochs=run.dropped, max_gaps=run.max_gaps, queries=ctx.counter.queries,
        requests=ctx.cache.requests, cache_hits=ctx.cache.hits, samples=ctx.counter.samples, threshold=plan.threshold,
        slack_tol=chosen.sampler.slack_tol, beta=s.beta, rank=s.rank, n_validation=plan.n_validation,
        n_spanner=plan.n_spanner, n_heldout=plan.n_heldout, witness_rule=s.witness_rule,
        witnesses_per_epoch=s.witnesses_per_epoch, lp_seconds=run.lp_seconds,
        seconds=time.perf_counter() - ctx.start, failure=failure, max_slacks=run.max_slacks,
        spanner_fallbacks=run.spanner_fallbacks, lp_cold_restarts=run.lp_cold_restarts, settings=s,
        accepted_by=accepted_by, returned_epoch=chosen.number, cert_estimates=run.cert_estimates,
        cert_bounds=run.cert_bounds, mean_gaps=run.mean_gaps, n_cert=plan.n_cert, cert_queries=run.cert_queries,
        acceptance=s.acceptance, cert_bound=s.cert_bound, stopped_early=reason == "patience" and epochs < plan.epochs,
        until=ctx.until, max_queries=ctx.max_queries, stop_reason=reason, cert_seed=ctx.cert_gen.initial_seed(),
        cert_delta=ctx.cert_delta, widening=ctx.widening, oracle_widening=oracle_widening(s.oracle_error, ctx.T, ctx.widening),
        validation_passed=run.validated, epoch_verdicts=run.verdicts, epoch_queries=run.epoch_queries,
    )
    if not accepted:
        warnings.warn(f"learn_approx: {failure}", ApproxNotAcceptedWarning, stacklevel=3)
    return chosen.sampler, report
