"""CompleteSpan (paper A, Algorithm 3): grow spanning histories and futures level by level."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from logitrank.synth import LanguageModel

from ._logit_matrix import logit_matrix
from ._span_blocks import complete_level_blocks
from ._span_linalg import future_columns, pick_future, rank_above, row_space, unseen_rows
from ._spanning_sets import IncompleteSpanError, RankExceededError, SpanningSets, Word

__all__ = ["IncompleteSpanError", "RankExceededError", "SpanSettings", "SpanningSets", "complete_span"]

@dataclass(frozen=True)
class SpanSettings:
    """How CompleteSpan reads the logit matrices (what it decides is set by Algorithm 3).

    Attributes
    ----------
    path : "blocks" (default) or "memo"
        "blocks": every level keeps a tensor cache of L(H_t ∪ H_{t−1}∘Σ, ·) filled by the model's
        batched path (an ISAN's factorised ``logit_block``), sampled rows are read in chunks
        (``logitrank.algorithms._span_blocks``). "memo": the reference path, one dict entry per
        prefix (:class:`QueryCache`) — exact, but 46.6 s and +7.5 GiB for one level at V=64, T=32,
        d=32. Unsketched, both make the same decisions and the same queries.
    sketch_futures : int or None
        None (default): rank is tested on all of F_t ∪ Σ∘F_{t+1}, as in Algorithm 3 (Theorem 4.4's
        guarantee). An int s: tested on F_t plus s extension futures drawn at random per level and
        round, each pick confirmed on all columns — about |Σ∘F_{t+1}| / (|F_t| + s) times fewer
        queries for sampled rows, at the price in guarantee stated in ``_span_blocks``'s docstring
        (a direction visible on few futures can be missed). ``s ≈ d`` gives a sketch of ~2d futures.
        Block path only.
    chunk_rows : int or None
        Candidate rows read per chunk (block path); None: from ``memory_budget``. Chunks change the
        order in which candidates are tried, not what is spanned.
    memory_budget : int
        Bytes for one chunk of candidate rows and its residuals (default 2**28).
    """

    path: str = "blocks"
    sketch_futures: int | None = None
    chunk_rows: int | None = None
    memory_budget: int = 2**28

    def __post_init__(self):
        from logitrank._validation import check_int

        if self.path not in ("blocks", "memo"):
            raise ValueError(f"path must be 'blocks' or 'memo'; got {self.path!r}")
        if self.sketch_futures is not None:
            object.__setattr__(self, "sketch_futures", check_int("sketch_futures", self.sketch_futures, minimum=1))
            if self.path != "blocks":
                raise ValueError("sketch_futures needs path='blocks' (the memo path tests every column); "
                                 f"got path={self.path!r}, sketch_futures={self.sketch_futures}")
        if self.chunk_rows is not None:
            object.__setattr__(self, "chunk_rows", check_int("chunk_rows", self.chunk_rows, minimum=1))
        object.__setattr__(self, "memory_budget", check_int("memory_budget", self.memory_budget, minimum=2**20))


def _prefix_rows(model: LanguageModel, rows: torch.Tensor, futures: list[Word]) -> torch.Tensor:
    """L_M(rows, futures) for a (n, t) tensor of histories: (n, |F|·V).

    A model with a batched path (an ISAN's factorised ``logit_block``, counted by
    :class:`logitrank.synth.CountingOracle` like single queries) answers the whole block at once from the
    tensor; any other model goes through :func:`logit_matrix`.
    """
    block = getattr(model, "logit_block", None)
    if callable(block) and rows.shape[0]:
        return block(rows, futures).reshape(rows.shape[0], -1)  # (n, |F|·V)
    return logit_matrix(model, rows, futures)


def _complete_level(
    model, sets: SpanningSets, t: int, sample_rows: torch.Tensor, rank_tol: float, limit: int | None
) -> list[tuple[Word | None, Word | None]]:
    """Algorithm 3's loop body (lines 9–13) at level t; returns the (h, f) pairs to add (and lowers
    ``sets.min_margin`` to the weakest accepted residual / tolerance).

    One batch of queries builds the rows H_t ∪ H_{t−1}∘Σ ∪ S_t on the columns F_t ∪ Σ∘F_{t+1};
    then pairs are picked one at a time, each raising the rank by one, until no candidate row is
    left outside the span or ``limit`` pairs were found (limit 1 is the printed algorithm). Extra
    pairs cost no queries: their rows and columns are already in the matrix. h is None when only
    the future side lacks rank; f is None at the last level, where Σ∘F_{t+1} is empty.
    """
    V, T = model.vocab_size, model.horizon
    H, F = list(sets.histories[t]), list(sets.futures[t])
    # Line 10's column set F_t ∪ Σ∘F_{t+1} (no extension at the last level).
    ext = [(z,) + f for z in range(V) for f in sets.futures[t + 1]] if t + 1 < T else []
    known = set(F)
    columns = F + [f for f in dict.fromkeys(ext) if f not in known]
    # Line 10's row set: H_t ∪ H_{t−1}∘Σ ∪ S_t (structured rows through the cache, samples batched).
    in_H = set(H)
    structured = [h + (z,) for h in sets.histories[t - 1] for z in range(V)]
    structured = [h for h in dict.fromkeys(structured) if h not in in_H]
    # Sampled rows already among H_t or the structured rows are dropped: under a non-repeatable noisy
    # oracle a second copy looks independent and would be added again (issue 11, defect 4).
    sample_rows = unseen_rows(sample_rows, in_H.union(structured))
    basis = logit_matrix(model, H, columns).double()  # (|H_t|, m)
    cand = logit_matrix(model, structured, columns).double() if structured else basis[:0]
    fresh = getattr(model, "uncached", model)  # sample rows are new every round: skip the cache
    samples = _prefix_rows(fresh, sample_rows, columns).double() if sample_rows.shape[0] else basis[:0]
    rows = torch.cat([cand, samples])  # (n_cand, m)
    names = structured + [tuple(r) for r in sample_rows.tolist()]
    scale = max(float(torch.linalg.matrix_norm(basis, 2)) if basis.numel() else 0.0,
                float(rows.norm(dim=1).max()) if rows.shape[0] else 0.0)
    if scale == 0.0:
        return []  # every logit is zero here: the uniform distribution, nothing to span
    tol = rank_tol * scale
    found: list[tuple[Word | None, Word | None]] = []
    # Residual of each candidate row off the row space of the basis rows on all columns; kept up
    # to date by Gram–Schmidt as rows join the basis (the new direction is re-orthogonalised
    # against Q), so each addition costs one pass over the candidate matrix, not a new projection.
    Q = row_space(basis, tol)  # (r, m)
    resid = rows - (rows @ Q.T) @ Q if rows.shape[0] else rows.clone()  # (n_cand, m)
    while limit is None or len(found) < limit:
        rank_F = rank_above(basis[:, future_columns(columns, F, V)], tol)
        norms = resid.norm(dim=1) if rows.shape[0] else rows.new_zeros(0)
        if norms.numel() and float(norms.max()) > tol:
            i = int(norms.argmax())
            h, row = names[i], rows[i : i + 1]
        elif rank_above(basis, tol) > rank_F:
            h, row = None, basis[:0]  # basis rows independent only on the extension columns
        else:
            break
        f = pick_future(basis, row, columns, F, V, tol, rank_F) if ext else None
        if h is None and f is None:
            break
        found.append((h, f))
        if h is not None:
            sets.min_margin = min(sets.min_margin, float(norms[i]) / tol)
        if h is not None:
            basis = torch.cat([basis, row])
            q = resid[i] / norms[i]  # (m,) the new direction, orthogonal to Q up to rounding
            q = q - (q @ Q.T) @ Q  # re-orthogonalise against the earlier directions
            q = q / q.norm()
            Q = torch.cat([Q, q.unsqueeze(0)])  # (r+1, m)
            resid.addr_(resid @ q, q, alpha=-1.0)  # in place: resid −= (resid q) qᵀ
            resid[i] = 0.0  # now in the basis: never picked again
        if f is not None:
            F.append(f)
    return found


def _add_history(H: list[Word], h: Word, t: int, V: int, max_rank: int) -> None:
    """Append h to H_t; the learned ISAN has hidden dim max_t |H_t|, so |H_t| may not pass max_rank.

    H_t ⊂ Σ^t holds distinct words: a repeat (or more than V^t histories) is a bug, not noise.
    """
    if h in H or len(H) >= V**t:
        raise RuntimeError(f"internal error: history {h!r} repeats at level t={t} or H_t is full (|Σ^t|={V**t})")
    H.append(h)
    if len(H) > max_rank:
        raise RankExceededError(t, len(H), max_rank)


def complete_span(
    model: LanguageModel,
    sets: SpanningSets,
    *,
    n_samples: int,
    generator: torch.Generator,
    rank_tol: float,
    max_rank: int,
    max_rounds: int,
    additions_per_level: int | None = None,
    settings: SpanSettings | None = None,
) -> SpanningSets:
    """CompleteSpan (paper A, Algorithm 3), in place on ``sets``; returns it.

    Each round draws ``n_samples`` sequences from the model (their length-t prefixes are the
    S_t of line 9 for every t, which keeps each S_t an i.i.d. sample of M[:t]) and, for every level
    t = 1 … T−1, tests whether the rows H_t ∪ H_{t−1}∘Σ ∪ S_t on the columns F_t ∪ Σ∘F_{t+1} have
    more rank than L(H_t, F_t) (line 10). If so it adds one history h and one future f that raise
    the rank by one (lines 12–13). Rounds stop when a whole round adds nothing.

    ``additions_per_level`` caps the pairs added per level and round: 1 is the printed algorithm;
    None (the default) keeps adding while the level's matrix, already queried, shows a candidate
    outside the span. Each addition still raises the rank by one, so Lemma C.17's bound of d·T
    additions holds; rounds drop from about d + 1 to about 2, and each round costs T·N·(V+1)·d
    queries, so this is the difference between seconds and minutes.

    Numerical rank: singular values and residuals below ``rank_tol`` times the level's scale (the
    largest singular value of the basis rows, or the largest candidate row norm) count as zero.

    Levels are visited from t = T−1 down to 1 (Algorithm 3 leaves the order of its for-loop open).
    A future found at level t+1 enters Σ∘F_{t+1} at level t in the same round, so directions that
    only show at the end of the sequence (noisy parity) are found in one round instead of one level
    per round — measured on noisy parity with n = 32: 2 rounds instead of 32.

    Other differences from the printed algorithm: rows already in H_t are skipped; when the rank gain
    comes from the future side alone (only possible while H_t holds a zero row) a future is added
    without a history; a future is added only at levels that have Σ∘F_{t+1} (t < T−1).

    ``settings`` (:class:`SpanSettings`) chooses how the matrices are read: the block path (default)
    or the per-prefix memo path, and optionally the sketched rank test. For the memo path pass a
    :class:`QueryCache` as ``model``; the block path keeps its own caches (``sets.block_cache``).
    """
    settings = SpanSettings() if settings is None else settings
    T = model.horizon
    if settings.path == "blocks":
        from ._span_store import SpanQueries

        if sets.block_cache is None:
            sets.block_cache = SpanQueries(model, store_all=settings.sketch_futures is None)

        def level(t, rows):
            out = complete_level_blocks(
                sets.block_cache, sets, t, rows, rank_tol, additions_per_level,
                sketch_futures=settings.sketch_futures, chunk_rows=settings.chunk_rows,
                memory_budget=settings.memory_budget, generator=generator)
            sets.sketch_rejections += out.sketch_rejections
            sets.min_margin = min(sets.min_margin, out.min_margin)
            return out.pairs
    else:
        def level(t, rows):
            return _complete_level(model, sets, t, rows, rank_tol, additions_per_level)
    for round_ in range(1, max_rounds + 1):
        sets.rounds = round_
        samples = model.sample(n_samples, generator=generator)  # (N, T)
        changed = False
        for t in range(T - 1, 0, -1):  # deepest level first: see the docstring
            rows = torch.unique(samples[:, :t], dim=0) if n_samples else samples[:, :t]
            for h, f in level(t, rows):
                if h is not None:
                    _add_history(sets.histories[t], h, t, model.vocab_size, max_rank)
                if f is not None:
                    sets.futures[t].append(f)
                sets.additions.append((round_, t, h, f))
                changed = True
        if not changed:
            return sets
    raise IncompleteSpanError(
        f"CompleteSpan still added directions in round {max_rounds} (max_rounds); the model may not "
        "have exact low logit rank at this tolerance — raise rank_tol for noisy oracles"
    )
