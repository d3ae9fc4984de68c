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

import torch

from ._complete_span import (
    SpanningSets,
    Word,
    _future_columns,
    _new_rows,
    _pick_future,
    _rank,
    _row_space,
)
from ._span_store import SpanQueries

__all__ = ["complete_level_blocks"]


def _level_candidates(sets: SpanningSets, t: int, V: int, T: int, sample_rows: torch.Tensor):
    """Line 10's columns F_t ∪ Σ∘F_{t+1} and rows H_{t−1}∘Σ (minus H_t), S_t (minus both)."""
    H, F = sets.histories[t], sets.futures[t]
    ext = [(z,) + f for z in range(V) for f in sets.futures[t + 1]] if t + 1 < T else []
    known = set(F)
    columns = list(F) + [f for f in dict.fromkeys(ext) if f not in known]
    in_H = set(H)
    structured = [h + (z,) for h in sets.histories[t - 1] for z in range(V)]
    structured = [h for h in dict.fromkeys(structured) if h not in in_H]
    return bool(ext), columns, structured, _new_rows(sample_rows, in_H.union(structured))


def _sketch(n_kept: int, n_columns: int, s: int | None, generator) -> tuple[torch.Tensor, bool]:
    """Positions (in ``columns``) of the sketch: all of F_t, then s of the rest drawn without replacement."""
    n_ext = n_columns - n_kept
    if s is None or s >= n_ext:
        return torch.arange(n_columns), False
    pick = torch.randperm(n_ext, generator=generator, device=generator.device)[:s].sort().values.cpu() + n_kept
    return torch.cat([torch.arange(n_kept), pick]), True


def complete_level_blocks(
    queries: SpanQueries, sets: SpanningSets, t: int, sample_rows: torch.Tensor, rank_tol: float,
    limit: int | None, *, sketch_futures: int | None, chunk_rows: int | None, memory_budget: int, generator,
) -> tuple[list[tuple[Word | None, Word | None]], int]:
    """Algorithm 3's loop body at level t on cached blocks; returns the (h, f) pairs to add and the
    number of sketch picks that the full columns rejected. Lowers ``sets.min_margin`` like the memo path.
    """
    V, T = queries.V, queries.T
    has_ext, columns, structured, sample_rows = _level_candidates(sets, t, V, T, sample_rows)
    H, F = list(sets.histories[t]), list(sets.futures[t])
    queries.kept[t] = set(F)
    sk, sketched = _sketch(len(F), len(columns), sketch_futures, generator)
    S = [columns[j] for j in sk.tolist()]
    basis3 = queries.block(t, H, columns)  # (k, m, V)
    basis = basis3.reshape(len(H), -1)  # (k, m·V) on all columns
    basis_S = basis3[:, sk.to(basis3.device)].reshape(len(H), -1) if sketched else basis  # (k, s'·V)
    names = structured + [tuple(r) for r in sample_rows.tolist()]
    n_struct, n_total = len(structured), len(structured) + sample_rows.shape[0]
    width = len(S) * V
    chunk = chunk_rows or max(1, memory_budget // (8 * max(width, 1) * 4))  # rows, resid, products
    norm_S = float(torch.linalg.matrix_norm(basis_S, 2)) if basis_S.numel() else 0.0
    norm_full = float(torch.linalg.matrix_norm(basis, 2)) if basis.numel() else 0.0
    found: list[tuple[Word | None, Word | None]] = []
    rejected, running = 0, 0.0
    tol_full = rank_tol * norm_full
    Q_full = _Rows(_row_space(basis, tol_full)) if sketched else None  # (r, m·V), grown in place
    tol = tol_full
    for c0, c1 in _chunks(n_struct, n_total, chunk, structured_first=sketched):
        parts = []
        if c0 < n_struct:
            parts.append(queries.block(t, names[c0:min(c1, n_struct)], S))  # (·, s', V)
        if c1 > n_struct:
            parts.append(queries.ask(sample_rows[max(c0, n_struct) - n_struct : c1 - n_struct], S))
        rows = torch.cat(parts).reshape(-1, width) if parts else basis_S[:0]  # (n_c, s'·V)
        if rows.shape[0]:
            running = max(running, float(rows.norm(dim=1).max()))
        scale = max(norm_S, running)
        if scale == 0.0:
            continue
        tol = rank_tol * scale
        if not sketched:
            tol_full = tol
        Q = _row_space(basis_S, tol)  # (r, s'·V)
        resid = rows - (rows @ Q.T) @ Q if rows.shape[0] else rows.clone()  # (n_c, s'·V)
        while limit is None or len(found) < limit:
            # a. Greedy picks on the (sketch) columns: each raises the rank of the sketched rows by one.
            picks, Q_before = [], Q
            while limit is None or len(found) + len(picks) < limit:
                norms = resid.norm(dim=1)
                if not norms.numel() or float(norms.max()) <= tol:
                    break
                i = int(norms.argmax())
                picks.append((i, float(norms[i])))
                Q, resid = _gram_schmidt_add(Q, resid, i, norms[i])
            if not picks:
                break
            # b. The picks on all columns, in one block (the sketch's confirmation), or as they are.
            if sketched:
                full = _full_rows(queries, t, [names[c0 + i] for i, _ in picks], [c0 + i < n_struct for i, _ in picks],
                                  columns)  # (p, m·V)
            else:
                full = rows[[i for i, _ in picks]]
            # c. Additions in pick order: confirm, choose the future on all columns (line 12), add.
            buf = torch.cat([basis, full])  # (k + p, m·V): basis rows as views of one buffer
            k0, broke = basis.shape[0], False
            for a, (i, norm_i) in enumerate(picks):
                row = full[a : a + 1]
                if sketched:
                    tol_c = rank_tol * max(norm_full, float(row.norm()))
                    Qf = Q_full.view()
                    r_full = row - (row @ Qf.T) @ Qf  # (1, m·V)
                    margin = float(r_full.norm()) / tol_c
                    if margin <= 1.0:  # seen on the sketch only: not for exact logits
                        rejected, broke = rejected + 1, True
                        resid_drop = i
                        break
                else:
                    tol_c, margin = tol, norm_i / tol
                basis = buf[: basis.shape[0]]
                rank_F = _rank(basis[:, _future_columns(columns, F, V)], tol_c)
                f = _pick_future(basis, row, columns, F, V, tol_c, rank_F) if has_ext else None
                found.append((names[c0 + i], f))
                sets.min_margin = min(sets.min_margin, margin)
                buf[basis.shape[0]] = row[0]
                basis = buf[: basis.shape[0] + 1]
                basis_S = torch.cat([basis_S, rows[i : i + 1]])
                if sketched:
                    Q_full.append(_direction(Q_full.view(), r_full[0]))
                if f is not None:
                    F.append(f)
                    queries.kept[t].add(f)
            basis = buf[: basis.shape[0]].clone() if basis.shape[0] < buf.shape[0] else buf
            if broke:  # undo the unconfirmed picks: residuals against the confirmed rows only
                done = [i for i, _ in picks[: basis.shape[0] - k0]] + [resid_drop]
                Q = _row_space(basis_S, tol) if basis_S.shape[0] else Q_before[:0]
                resid = rows - (rows @ Q.T) @ Q
                resid[done] = 0.0
    # Rank gain from the future side alone (basis rows independent only on the extension columns).
    tol_fs = tol if not sketched else rank_tol * max(norm_full, 0.0)
    while has_ext and (limit is None or len(found) < limit) and tol_fs > 0.0:
        rank_F = _rank(basis[:, _future_columns(columns, F, V)], tol_fs)
        if _rank(basis, tol_fs) <= rank_F:
            break
        f = _pick_future(basis, basis[:0], columns, F, V, tol_fs, rank_F)
        if f is None:
            break
        found.append((None, f))
        F.append(f)
        queries.kept[t].add(f)
    return found, rejected


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
