"""One level of CompleteSpan (paper A, Algorithm 3, lines 9–13) on cached tensor blocks, optionally sketched.

The block path of :func:`logitrank.algorithms.complete_span` (``SpanSettings(path="blocks")``).
Unsketched it makes the same decisions as the per-prefix memo path, on the same numbers up to float
rounding (the factorised block agrees with single queries to ~1e-15), and asks the same queries. The
differences are how: structured rows H_{t−1}∘Σ go through :class:`SpanQueries` (one tensor per
level, no dict entry per prefix) and sampled rows are read in chunks of ``chunk_rows``.

The sketch (``sketch_futures = s``): Algorithm 3 tests rank on the columns F_t ∪ Σ∘F_{t+1} (≈ V·d
futures). The sketched test uses F_t plus s futures drawn uniformly without replacement from the
rest of Σ∘F_{t+1}, fresh at every level and round (with the learner's generator). A row that clears
the tolerance on the sketch is *confirmed* on all columns before it is added (its residual off the
span of the basis rows on F_t ∪ Σ∘F_{t+1} must clear the tolerance too), and its future is picked
on all columns as in the unsketched path, so every addition still raises the rank of the full
matrix by one (Lemma C.17's count of at most d·T additions stands) and the built ISAN is the same
Lemma C.3 construction. What the sketch gives up is detection: since L(H_t, F_t) has full row rank
up to the initial row, a row r outside the span on all columns has a unique fit c on F_t and a
*witness set* W(r) of extension futures where r differs from cᵀL(H_t, ·); the sketch misses r with
probability C(n−|W|, s)/C(n, s) ≤ (1 − |W|/n)^s, n = |Σ∘F_{t+1} \\ F_t|. For generic models W is
almost all futures and the miss probability is negligible; in the worst case (|W| = 1) a direction is
found with probability s/n per level and round only (a planted model in the tests, with one witness
in 8 and s = 1, is learned wrongly, TV 5.9e-3, in 5 of 12 seeds). So Theorem 4.4's E[TV] ≤ ε holds for the
sketched learner only on the event that no direction was missed in the final (clean) round; the
unsketched path (``sketch_futures=None``) keeps the paper's guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._span_linalg import future_columns, pick_future, rank_above, row_space, unseen_rows
from ._span_store import SpanQueries
from ._spanning_sets import SpanningSets, Word

__all__ = ["LevelOutcome", "complete_level_blocks"]


def _level_candidates(sets: SpanningSets, t: int, V: int, T: int, sample_rows: torch.Tensor):
    """Line 10's columns F_t ∪ Σ∘F_{t+1} and rows H_{t−1}∘Σ (minus H_t), S_t (minus both)."""
    H, F = sets.histories[t], sets.futures[t]
    ext = [(z,) + f for z in range(V) for f in sets.futures[t + 1]] if t + 1 < T else []
    known = set(F)
    columns = list(F) + [f for f in dict.fromkeys(ext) if f not in known]
    in_H = set(H)
    structured = [h + (z,) for h in sets.histories[t - 1] for z in range(V)]
    structured = [h for h in dict.fromkeys(structured) if h not in in_H]
    return bool(ext), columns, structured, unseen_rows(sample_rows, in_H.union(structured))


def _sketch(n_kept: int, n_columns: int, s: int | None, generator) -> tuple[torch.Tensor, bool]:
    """Positions (in ``columns``) of the sketch: all of F_t, then s of the rest drawn without replacement."""
    n_ext = n_columns - n_kept
    if s is None or s >= n_ext:
        return torch.arange(n_columns), False
    pick = torch.randperm(n_ext, generator=generator, device=generator.device)[:s].sort().values.cpu() + n_kept
    return torch.cat([torch.arange(n_kept), pick]), True


@dataclass(frozen=True)
class LevelOutcome:
    """What one level of the block path found (nothing of the caller's is changed in place).

    Attributes
    ----------
    pairs : list of (h or None, f or None)
        The (history, future) pairs to add, in order (Algorithm 3, lines 11–12).
    sketch_rejections : int
        Sketch picks that the full columns did not confirm (0 unsketched).
    min_margin : float
        Smallest accepted residual / tolerance (inf when nothing was added).
    """

    pairs: list
    sketch_rejections: int
    min_margin: float


@dataclass(frozen=True)
class _Level:
    """The level's fixed data: columns, candidate rows, the sketch, chunking and norms."""

    t: int
    V: int
    has_ext: bool
    columns: list  # F_t ∪ Σ∘F_{t+1}
    names: list  # candidate rows: H_{t−1}∘Σ then S_t
    n_struct: int
    sample_rows: torch.Tensor  # (n_s, t)
    S: list  # the (sketch) columns
    sketched: bool
    chunk: int
    norm_S: float
    norm_full: float

    @property
    def n_total(self) -> int:
        return len(self.names)


class _Growing:
    """What the level grows: the basis rows (all and sketch columns), F_t, the confirmed directions,
    the pairs found and their statistics. The level's own copies, never the caller's."""

    def __init__(self, basis: torch.Tensor, basis_S: torch.Tensor, F: list, Q_full):
        self.basis, self.basis_S, self.F, self.Q_full = basis, basis_S, F, Q_full
        self.found: list[tuple[Word | None, Word | None]] = []
        self.rejected, self.min_margin = 0, float("inf")


def complete_level_blocks(
    queries: SpanQueries, sets: SpanningSets, t: int, sample_rows: torch.Tensor, rank_tol: float,
    limit: int | None, *, sketch_futures: int | None, chunk_rows: int | None, memory_budget: int, generator,
) -> LevelOutcome:
    """Algorithm 3's loop body (lines 9–13) at level t on cached blocks.

    Steps: :func:`_plan` (the columns, candidate rows and sketch), then per chunk of candidate rows
    :func:`_read_rows`, :func:`_greedy_picks` (each pick raises the rank on the sketch columns by one),
    :func:`_candidates_on_all_columns` and :func:`_add_confirmed` (line 12's future for each confirmed
    pick), and last :func:`_future_side` (rank gained by futures alone). ``sets`` is only read; the
    futures kept are registered with ``queries`` (its cache policy).
    """
    lvl, grow = _plan(queries, sets, t, sample_rows, rank_tol, sketch_futures, chunk_rows, memory_budget, generator)
    running, tol = 0.0, rank_tol * lvl.norm_full
    room = (lambda: None) if limit is None else (lambda: limit - len(grow.found))
    for c0, c1 in _chunks(lvl.n_struct, lvl.n_total, lvl.chunk, structured_first=lvl.sketched):
        rows = _read_rows(queries, lvl, c0, c1, grow.basis_S)  # (n_c, s'·V)
        if rows.shape[0]:
            running = max(running, float(rows.norm(dim=1).max()))
        scale = max(lvl.norm_S, running)
        if scale == 0.0:
            continue
        tol = rank_tol * scale
        Q = row_space(grow.basis_S, tol)  # (r, s'·V)
        resid = rows - (rows @ Q.T) @ Q if rows.shape[0] else rows.clone()  # (n_c, s'·V)
        while room() is None or room() > 0:
            picks, Q_after, resid = _greedy_picks(Q, resid, tol, room())
            if not picks:
                break
            full = _candidates_on_all_columns(queries, lvl, picks, c0, rows)  # (p, m·V)
            n_before = grow.basis.shape[0]
            dropped = _add_confirmed(queries, lvl, grow, picks, full, rows, c0, rank_tol, tol)
            if dropped is None:
                Q = Q_after
                continue
            # an unconfirmed pick: residuals against the confirmed rows only, its own and the added zeroed
            done = [i for i, _ in picks[: grow.basis.shape[0] - n_before]] + [dropped]
            Q = row_space(grow.basis_S, tol) if grow.basis_S.shape[0] else Q[:0]
            resid = rows - (rows @ Q.T) @ Q
            resid[done] = 0.0
    tol_fs = tol if not lvl.sketched else rank_tol * max(lvl.norm_full, 0.0)
    _future_side(queries, lvl, grow, tol_fs, limit)
    return LevelOutcome(grow.found, grow.rejected, grow.min_margin)


def _plan(queries, sets, t, sample_rows, rank_tol, sketch_futures, chunk_rows, memory_budget,
          generator) -> tuple[_Level, _Growing]:
    """The level's columns, candidate rows, sketch and basis (F_t's rows), read once."""
    V, T = queries.V, queries.T
    has_ext, columns, structured, sample_rows = _level_candidates(sets, t, V, T, sample_rows)
    H, F = list(sets.histories[t]), list(sets.futures[t])
    queries.kept[t] = set(F)
    sk, sketched = _sketch(len(F), len(columns), sketch_futures, generator)
    S = [columns[j] for j in sk.tolist()]
    basis3 = queries.block(t, H, columns)  # (k, m, V)
    basis = basis3.reshape(len(H), -1)  # (k, m·V) on all columns
    basis_S = basis3[:, sk.to(basis3.device)].reshape(len(H), -1) if sketched else basis  # (k, s'·V)
    width = len(S) * V
    lvl = _Level(
        t=t, V=V, has_ext=has_ext, columns=columns, names=structured + [tuple(r) for r in sample_rows.tolist()],
        n_struct=len(structured), sample_rows=sample_rows, S=S, sketched=sketched,
        chunk=chunk_rows or max(1, memory_budget // (8 * max(width, 1) * 4)),  # rows, resid, products
        norm_S=float(torch.linalg.matrix_norm(basis_S, 2)) if basis_S.numel() else 0.0,
        norm_full=float(torch.linalg.matrix_norm(basis, 2)) if basis.numel() else 0.0,
    )
    # sketched: the confirmed directions on all columns, grown as picks are confirmed
    Q_full = _Rows(row_space(basis, rank_tol * lvl.norm_full)) if sketched else None  # (r, m·V)
    return lvl, _Growing(basis, basis_S, F, Q_full)


def _read_rows(queries: SpanQueries, lvl: _Level, c0: int, c1: int, basis_S: torch.Tensor) -> torch.Tensor:
    """Candidate rows c0 … c1 on the (sketch) columns: → (n_c, s'·V)."""
    parts = []
    if c0 < lvl.n_struct:
        parts.append(queries.block(lvl.t, lvl.names[c0:min(c1, lvl.n_struct)], lvl.S))  # (·, s', V)
    if c1 > lvl.n_struct:
        parts.append(queries.ask(lvl.sample_rows[max(c0, lvl.n_struct) - lvl.n_struct : c1 - lvl.n_struct], lvl.S))
    return torch.cat(parts).reshape(-1, len(lvl.S) * lvl.V) if parts else basis_S[:0]


def _greedy_picks(Q: torch.Tensor, resid: torch.Tensor, tol: float, room: int | None):
    """Greedy picks on the (sketch) columns, each raising the rank of the rows by one, at most ``room``:
    → (picks as (row index, residual norm), Q grown by the picks, residuals updated)."""
    picks = []
    while room is None or len(picks) < room:
        norms = resid.norm(dim=1)
        if not norms.numel() or float(norms.max()) <= tol:
            break
        i = int(norms.argmax())
        picks.append((i, float(norms[i])))
        Q, resid = _gram_schmidt_add(Q, resid, i, norms[i])
    return picks, Q, resid


def _candidates_on_all_columns(queries: SpanQueries, lvl: _Level, picks: list, c0: int, rows: torch.Tensor) -> torch.Tensor:
    """The picks on all columns, in one block (the sketch's confirmation), or as they are: → (p, m·V)."""
    if not lvl.sketched:
        return rows[[i for i, _ in picks]]
    return _full_rows(queries, lvl.t, [lvl.names[c0 + i] for i, _ in picks],
                      [c0 + i < lvl.n_struct for i, _ in picks], lvl.columns)


def _add_confirmed(queries, lvl: _Level, grow: _Growing, picks: list, full: torch.Tensor, rows: torch.Tensor,
                   c0: int, rank_tol: float, tol: float) -> int | None:
    """Additions in pick order: confirm on all columns (sketched), choose line 12's future, add.

    Grows ``grow`` (basis rows, sketch rows, F_t, pairs, margins); → the row index of the first pick
    that the full columns did not confirm (the later picks are not added), or None.
    """
    V = lvl.V
    for a, (i, norm_i) in enumerate(picks):
        row = full[a : a + 1]  # (1, m·V)
        if lvl.sketched:
            tol_c = rank_tol * max(lvl.norm_full, float(row.norm()))
            Qf = grow.Q_full.view()
            r_full = row - (row @ Qf.T) @ Qf  # (1, m·V)
            margin = float(r_full.norm()) / tol_c
            if margin <= 1.0:  # seen on the sketch only: not for exact logits
                grow.rejected += 1
                return i
        else:
            tol_c, margin = tol, norm_i / tol
        rank_F = rank_above(grow.basis[:, future_columns(lvl.columns, grow.F, V)], tol_c)
        f = pick_future(grow.basis, row, lvl.columns, grow.F, V, tol_c, rank_F) if lvl.has_ext else None
        grow.found.append((lvl.names[c0 + i], f))
        grow.min_margin = min(grow.min_margin, margin)
        grow.basis = torch.cat([grow.basis, row])
        grow.basis_S = torch.cat([grow.basis_S, rows[i : i + 1]])
        if lvl.sketched:
            grow.Q_full.append(_direction(grow.Q_full.view(), r_full[0]))
        if f is not None:
            grow.F.append(f)
            queries.kept[lvl.t].add(f)
    return None


def _future_side(queries, lvl: _Level, grow: _Growing, tol: float, limit: int | None) -> None:
    """Rank gained from the future side alone (basis rows independent only on the extension columns):
    pairs (None, f) until the future columns carry the basis's rank."""
    while lvl.has_ext and (limit is None or len(grow.found) < limit) and tol > 0.0:
        rank_F = rank_above(grow.basis[:, future_columns(lvl.columns, grow.F, lvl.V)], tol)
        if rank_above(grow.basis, tol) <= rank_F:
            break
        f = pick_future(grow.basis, grow.basis[:0], lvl.columns, grow.F, lvl.V, tol, rank_F)
        if f is None:
            break
        grow.found.append((None, f))
        grow.F.append(f)
        queries.kept[lvl.t].add(f)


def _chunks(n_struct: int, n_total: int, chunk: int, *, structured_first: bool) -> list[tuple[int, int]]:
    """Row ranges read together. Unsketched: consecutive chunks over structured-then-sampled rows (one
    chunk when memory allows, which is exactly the memo path's order). Sketched: the structured rows
    H_{t−1}∘Σ first on their own — they usually carry every direction, so the greedy picks run on
    V·d rows instead of V·d + N — then the sampled rows in chunks."""
    if not structured_first or n_struct == 0:
        return [(c0, min(c0 + chunk, n_total)) for c0 in range(0, max(n_total, 1), chunk)]
    return [(0, n_struct)] + [(c0, min(c0 + chunk, n_total)) for c0 in range(n_struct, n_total, chunk)]


def _full_rows(queries: SpanQueries, t: int, hs: list[Word], cached: list[bool], columns: list[Word]) -> torch.Tensor:
    """Candidates on all columns (p, m·V) in one block each for structured rows (through the level
    cache) and sampled rows (fresh), so the future maps are built once per batch, not once per row."""
    out = torch.empty(len(hs), len(columns) * queries.V, dtype=torch.float64, device=queries.levels[t].device)
    for flag in (True, False):
        idx = [a for a, c in enumerate(cached) if c == flag]
        if not idx:
            continue
        sub = [hs[a] for a in idx]
        if flag:
            vals = queries.block(t, sub, columns)
        else:
            vals = queries.ask(torch.tensor(sub, dtype=torch.long, device=out.device).reshape(len(sub), t), columns)
        out[idx] = vals.reshape(len(sub), -1)
    return out


class _Rows:
    """A (k, m) matrix that grows by appended rows without copying it each time (capacity doubles)."""

    def __init__(self, M: torch.Tensor):
        self._buf, self._k = M, M.shape[0]

    def view(self) -> torch.Tensor:
        return self._buf[: self._k]

    def append(self, row: torch.Tensor) -> None:
        if self._k == self._buf.shape[0]:
            grown = self._buf.new_empty(max(2 * self._k, 8), self._buf.shape[1])
            grown[: self._k] = self._buf[: self._k]
            self._buf = grown
        self._buf[self._k] = row
        self._k += 1


def _direction(Q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """r (m,) normalised and re-orthogonalised against the orthonormal rows of Q (k, m): → (m,)."""
    q = r / r.norm()
    q = q - (q @ Q.T) @ Q
    return q / q.norm()


def _gram_schmidt_add(Q: torch.Tensor, resid: torch.Tensor, i: int, norm: torch.Tensor):
    """Row i of ``resid`` joins the basis: new direction appended to Q, every residual updated in place."""
    q = resid[i] / norm  # (m,) orthogonal to Q up to rounding
    q = q - (q @ Q.T) @ Q
    q = q / q.norm()
    resid.addr_(resid @ q, q, alpha=-1.0)  # resid −= (resid q) qᵀ
    resid[i] = 0.0
    return torch.cat([Q, q.unsqueeze(0)]), resid
