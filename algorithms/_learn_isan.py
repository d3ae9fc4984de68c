"""Learning a time-varying ISAN from logit queries (paper A, Algorithm 2; Lemma C.3; Theorem 4.4)."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import torch

from logitrank._validation import as_generator, check_int, check_model, check_real, resolve_dtype
from logitrank.synth import CountingOracle, LanguageModel, TimeVaryingISAN

from ._complete_span import SpanningSets, SpanSettings, complete_span
from ._logit_matrix import logit_matrix
from ._query_cache import QueryCache

__all__ = [
    "MARGIN_WARNING",
    "LearnReport",
    "RankMarginWarning",
    "default_n_samples",
    "isan_from_spanning_sets",
    "learn_isan",
]

#: A learned direction whose residual is within this factor of the rank tolerance triggers a warning.
MARGIN_WARNING = 10.0


class RankMarginWarning(UserWarning):
    """Some accepted direction barely cleared the rank tolerance (see ``LearnReport.rank_margin``)."""


def isan_from_spanning_sets(
    model: LanguageModel,
    histories: list[list[tuple[int, ...]]],
    futures: list[list[tuple[int, ...]]],
    *,
    dtype=None,
) -> TimeVaryingISAN:
    """The ISAN of Lemma C.3 / Algorithm 2 (lines 6–13) built from spanning sets.

    The state at step t holds coefficients over the spanning histories H_t: x̂_t with
    x̂_tᵀ L(H_t, F_t) = L({y_{1:t}}, F_t). Then

    * x̂_0 = e_1 (H_0 = {Null});
    * A[t−1, z] (|H_t| × |H_{t−1}|) solves L(H_{t−1}∘z, F_t) = A[t−1, z]ᵀ L(H_t, F_t) in least
      squares (exact when the rows of L(H_t, F_t) span those of L(H_{t−1}∘z, F_t));
    * B[t] = L(H_t, {Null})ᵀ, the next-token logits of the spanning histories;

    all zero-padded to d = max_t |H_t|. Every F_t must contain the empty future.

    Parameters
    ----------
    model : LanguageModel with horizon T
    histories : T lists; histories[t] ⊂ Σ^t, histories[0] == [()]
    futures : T lists; futures[t] words with t + |f| <= T − 1, each containing ()
    dtype : torch dtype of the result (float64 by default)

    Returns
    -------
    TimeVaryingISAN of hidden dim max_t |H_t|.

    Examples
    --------
    >>> from logitrank.synth import random_isan, all_sequences
    >>> m = random_isan(2, 4, 2, generator=0)
    >>> H = [[()], [(0,), (1,)], [(0, 0), (1, 1)], [(0, 0, 0), (1, 1, 1)]]
    >>> F = [[()], [(), (0,)], [(), (0,)], [()]]
    >>> 0.5 * (m.distribution() - isan_from_spanning_sets(m, H, F).distribution()).abs().sum().item() < 1e-12
    True
    """
    T, V = model.horizon, model.vocab_size
    if T is None or len(histories) != T or len(futures) != T:
        raise ValueError(f"need one history set and one future set per level t = 0 … T−1 (T={T}); "
                         f"got {len(histories)} and {len(futures)}")
    if list(histories[0]) != [()]:
        raise ValueError(f"histories[0] must be [()] (the empty history); got {histories[0]!r}")
    for t, F in enumerate(futures):
        if () not in F:
            raise ValueError(f"futures[{t}] must contain the empty future (); got {F!r}")
    dtype = resolve_dtype("dtype", dtype)

    def block(t, rows, futs):  # (n, |F|·V) float64
        return logit_matrix(model, rows, futs).double()

    return _isan_from_blocks(block, T, V, histories, futures, getattr(model, "device", None), dtype)


def _isan_from_blocks(block, T: int, V: int, histories, futures, device, dtype) -> TimeVaryingISAN:
    """Lemma C.3's ISAN from ``block(t, rows, futures) -> (n, |futures|·V)`` (see :func:`isan_from_spanning_sets`)."""
    d = max(len(H) for H in histories)
    A = torch.zeros(T, V, d, d, dtype=torch.float64)
    B = torch.zeros(T, V, d, dtype=torch.float64)
    for t in range(T):
        H, F = histories[t], futures[t]
        B[t, :, : len(H)] = block(t, H, [()]).T.cpu()  # (V, |H_t|)
        if t == 0:
            continue
        prev = histories[t - 1]
        target = block(t, H, F)  # (|H_t|, m)
        moved = block(t, [h + (z,) for z in range(V) for h in prev], F)  # (V·|H_{t−1}|, m)
        # Solve target.T @ X = moved.T for X (|H_t|, V·|H_{t−1}|): column (z, j) holds A[t−1, z][:, j].
        X = torch.linalg.lstsq(target.T.cpu(), moved.T.cpu(), driver="gelsd").solution
        A[t - 1, :, : len(H), : len(prev)] = X.reshape(len(H), V, len(prev)).permute(1, 0, 2)
    x0 = torch.zeros(d, dtype=torch.float64)
    x0[0] = 1.0
    return TimeVaryingISAN(A, B, x0).to(device=device, dtype=dtype)


#: most samples per round learn_isan draws (a (N, T) LongTensor of 2**31 rows is 16·T GiB)
_MAX_SAMPLES = 2**31


def default_n_samples(horizon: int, epsilon: float, delta: float, max_rank: int) -> int:
    """Samples per round so that the union bound of Lemma C.17 gives failure probability <= δ.

    Lemma C.17 fails with probability at most d·T²·(1 − ε/(2T))^N; solving for N gives
    N = ⌈ln(d·T²/δ) / −ln(1 − ε/(2T))⌉ ≈ (2T/ε)·ln(d·T²/δ), with d = ``max_rank``.
    """
    T = check_int("horizon", horizon, minimum=1)
    epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0, low_open=True, high_open=True)
    delta = check_real("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    max_rank = check_int("max_rank", max_rank, minimum=1)
    return max(1, math.ceil(math.log(max_rank * T * T / delta) / -math.log1p(-epsilon / (2 * T))))


@dataclass
class LearnReport:
    """What :func:`learn_isan` did and what it cost.

    Attributes
    ----------
    rounds : iterations of Algorithm 3's while-loop (Lemma C.17: at most d·T before the clean one)
    history_sizes, future_sizes : |H_t| and |F_t| for t = 0 … T−1
    queries : logit queries (prefixes) that reached the model; repeats are served by the cache
    cache_hits : repeated lookups answered from the per-prefix memo (memo path; 0 on the block path,
        whose level caches serve repeats without a per-prefix count)
    samples : sequences drawn from the model
    n_samples : N, samples drawn per round
    rank_tol : relative tolerance used for every rank decision
    seconds : wall time
    additions : (round, t, h, f) for every pair CompleteSpan added
    rank_margin : weakest accepted direction's residual divided by the rank tolerance (inf when
        nothing beyond the initial rows was added). Below ``MARGIN_WARNING`` (10) the rank decisions
        sat close to the threshold — typical of oracle noise near ``rank_tol`` — and a
        :class:`RankMarginWarning` is issued: the learned dimension may include noise directions.
    histories, futures : the spanning sets H_t and F_t themselves (T lists of token tuples)
    settings : the :class:`SpanSettings` used
    sketch_rejections : sketched picks that the full columns rejected (0 unless logits are noisy)
    """

    rounds: int
    history_sizes: list[int]
    future_sizes: list[int]
    queries: int
    cache_hits: int
    samples: int
    n_samples: int
    rank_tol: float
    seconds: float
    additions: list
    rank_margin: float = float("inf")
    histories: list = field(default_factory=list)
    futures: list = field(default_factory=list)
    settings: SpanSettings | None = None
    sketch_rejections: int = 0

    @property
    def hidden_dim(self) -> int:
        return max(self.history_sizes)


def learn_isan(
    oracle: LanguageModel,
    *,
    epsilon: float,
    delta: float = 0.05,
    rank_tol: float = 1e-8,
    max_rank: int = 64,
    n_samples: int | None = None,
    max_rounds: int | None = None,
    additions_per_level: int | None = None,
    settings: SpanSettings | None = None,
    generator,
    dtype=None,
) -> tuple[TimeVaryingISAN, LearnReport]:
    """Learn a time-varying ISAN from logit queries (paper A, Algorithm 2 with Algorithm 3).

    Steps (numbered as in Algorithm 2):

    2–3. H_t = {0^t}, F_t = {Null} for every level t.
    4.   N samples per round (:func:`default_n_samples`: Lemma C.17's union bound with failure
         probability δ and d = ``max_rank``; the paper's N = (4T/ε)·log(dT/ε) sets δ implicitly).
    5.   CompleteSpan (:func:`complete_span`).
    6–13. The ISAN of :func:`isan_from_spanning_sets`.

    Every query goes through a :class:`~logitrank.synth.CountingOracle`: one query is one prefix whose
    logits reach the model, on both paths. Repeats are served by the level tensor caches (block
    path: prefixes shared by the same level or the levels one up or down) or by a :class:`QueryCache`
    (memo path: every repeat); sampled rows are asked afresh every round on both.

    Parameters
    ----------
    oracle : LanguageModel with a finite horizon T
        The model queried (logits and samples only).
    epsilon : float in (0, 1)
        Target TV error (Theorem 4.4: E[TV] <= ε).
    delta : float in (0, 1)
        Allowed failure probability of the coverage guarantee.
    rank_tol : float
        Relative tolerance of every rank decision (singular values or residuals below
        ``rank_tol`` × the level's largest singular value count as zero). The default 1e-8 lies far
        above float64 rounding (~1e-15 relative) and below the smallest directions of the
        models tested here; for a noisy oracle with error ξ per logit use a few times ξ / scale.
    max_rank : int
        Largest logit rank accepted; finding more independent histories at a level raises
        :class:`RankExceededError` instead of truncating.
    n_samples : int, optional
        Override N.
    max_rounds : int, optional
        Cap on the while-loop (default max_rank·T + 1, the Lemma C.17 bound plus the clean round).
    additions_per_level : int, optional
        Pairs (h, f) CompleteSpan may add per level and round; 1 is the printed Algorithm 3, None
        (default) adds every direction the already-queried matrix reveals (see :func:`complete_span`).
    settings : SpanSettings, optional
        How the logit matrices are read: the block path with level tensor caches (default), the
        per-prefix memo path (``path="memo"``, the reference) and the optional sketched rank test
        (``sketch_futures``; see :class:`SpanSettings` for what it costs in guarantee).
    generator : torch.Generator or int
        Randomness of the samples (and of the sketch).
    dtype : dtype of the learned ISAN (float64 default).

    Returns
    -------
    (TimeVaryingISAN, LearnReport)

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> truth = random_isan(3, 5, 2, generator=0)
    >>> learned, report = learn_isan(truth, epsilon=0.1, generator=0)
    >>> 0.5 * (truth.distribution() - learned.distribution()).abs().sum().item() < 1e-9
    True
    >>> report.rounds <= 2 * 5 + 1
    True
    """
    check_model("oracle", oracle, needs=("vocab_size", "horizon", "logits"))
    T = oracle.horizon
    if T is None:
        raise ValueError("learn_isan needs a model with a finite horizon; got horizon=None")
    epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0, low_open=True, high_open=True)
    delta = check_real("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    rank_tol = check_real("rank_tol", rank_tol, low=0.0, high=1.0, low_open=True, high_open=True)
    max_rank = check_int("max_rank", max_rank, minimum=1)
    if n_samples is not None:
        n_samples = check_int("n_samples", n_samples, minimum=0, maximum=_MAX_SAMPLES)
    N = default_n_samples(T, epsilon, delta, max_rank) if n_samples is None else n_samples
    if N > _MAX_SAMPLES:
        raise ValueError(f"epsilon={epsilon:g} needs N = {N:.3g} samples per round (Lemma C.17, default_n_samples), "
                         f"more than {_MAX_SAMPLES:.3g}; use a larger epsilon or pass n_samples=")
    max_rounds = max_rank * T + 1 if max_rounds is None else check_int("max_rounds", max_rounds, minimum=1)
    device = getattr(oracle, "device", torch.device("cpu"))
    gen = as_generator(generator, device)
    start = time.perf_counter()
    if settings is None:
        settings = SpanSettings()
    elif not isinstance(settings, SpanSettings):
        raise TypeError(f"settings must be a SpanSettings; got {type(settings).__name__}")
    counter = CountingOracle(oracle)
    sets = SpanningSets.initial(T)
    if additions_per_level is not None:
        additions_per_level = check_int("additions_per_level", additions_per_level, minimum=1)
    cache = QueryCache(counter) if settings.path == "memo" else None
    complete_span(counter if cache is None else cache, sets, n_samples=N, generator=gen, rank_tol=rank_tol,
                  max_rank=max_rank, max_rounds=max_rounds, additions_per_level=additions_per_level,
                  settings=settings)
    if cache is not None:
        learned = isan_from_spanning_sets(cache, sets.histories, sets.futures, dtype=dtype)
    else:
        queries = sets.block_cache

        def block(t, rows, futs):  # (n, |F|·V) float64 through the level caches
            return queries.block(t, list(rows), list(futs)).reshape(len(rows), -1)

        learned = _isan_from_blocks(block, T, oracle.vocab_size, sets.histories, sets.futures, device,
                                    resolve_dtype("dtype", dtype))
    report = LearnReport(
        rounds=sets.rounds,
        history_sizes=[len(H) for H in sets.histories],
        future_sizes=[len(F) for F in sets.futures],
        queries=counter.queries,
        cache_hits=cache.hits if cache is not None else 0,
        samples=counter.samples,
        n_samples=N,
        rank_tol=rank_tol,
        seconds=time.perf_counter() - start,
        additions=sets.additions,
        rank_margin=sets.min_margin,
        histories=sets.histories,
        futures=sets.futures,
        settings=settings,
        sketch_rejections=sets.sketch_rejections,
    )
    if report.rank_margin < MARGIN_WARNING:
        warnings.warn(
            f"a direction kept by the learner cleared rank_tol={rank_tol:g} by only a factor "
            f"{report.rank_margin:.3g}, so the learned dimension {report.hidden_dim} is sensitive to rank_tol: "
            f"oracle noise near the tolerance adds spurious directions, a tolerance near a true direction's "
            f"size may drop it; compare runs with rank_tol ×10 and ÷10",
            RankMarginWarning,
            stacklevel=2,
        )
    return learned, report
