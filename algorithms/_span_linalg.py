"""Linear algebra of span completion (paper A, Algorithm 3): row spaces, ranks and the next future.

Shared by the reference path (:mod:`._complete_span`) and the block path (:mod:`._span_blocks`).
"""

from __future__ import annotations

import torch

from ._spanning_sets import Word

__all__ = ["future_columns", "pick_future", "rank_above", "row_space", "unseen_rows"]


def unseen_rows(rows: torch.Tensor, known: set[Word]) -> torch.Tensor:
    """The rows of a (n, t) tensor whose token tuples are not in ``known``: (n', t)."""
    if not known or rows.shape[0] == 0:
        return rows
    keep = [tuple(r) not in known for r in rows.tolist()]
    return rows[torch.tensor(keep, dtype=torch.bool, device=rows.device)]


def row_space(M: torch.Tensor, tol: float) -> torch.Tensor:
    """Orthonormal basis (r, m) of the row space of M (k, m), singular values above tol.

    For a wide M (k < m) the SVD is taken of the (k, k) factor R of Mᵀ = Q R (Householder QR, backward
    stable): M = Rᵀ Qᵀ has the singular values of R and right singular vectors Q·U, at O(m·k²)
    instead of the full SVD's larger constant.
    """
    if M.shape[0] == 0:
        return M.new_zeros(0, M.shape[1])
    if 2 * M.shape[0] <= M.shape[1]:
        Qm, R = torch.linalg.qr(M.T)  # (m, k), (k, k)
        U, S, _ = torch.linalg.svd(R, full_matrices=False)  # R = U S Vᵀ: M = V S (Qm U)ᵀ
        return (Qm @ U[:, : int((S > tol).sum())]).T
    _, S, Vh = torch.linalg.svd(M, full_matrices=False)
    return Vh[: int((S > tol).sum())]


def rank_above(M: torch.Tensor, tol: float) -> int:
    """Number of singular values of M above tol (0 for an empty M)."""
    if M.numel() == 0:
        return 0
    return int((torch.linalg.svdvals(M) > tol).sum())


def future_columns(futures: list[Word], chosen: list[Word], V: int) -> torch.Tensor:
    """Column indices of the futures ``chosen`` inside the future-major layout of ``futures``."""
    pos = {f: i for i, f in enumerate(futures)}
    return torch.tensor([pos[f] * V + z for f in chosen for z in range(V)], dtype=torch.long)


def pick_future(
    basis: torch.Tensor, row: torch.Tensor, columns: list[Word], F: list[Word], V: int, tol: float, rank_F: int
) -> Word | None:
    """Line 12's future: some f in Σ∘F_{t+1} but not in F_t, with rank L(H_t ∪ {h}, F_t ∪ {f}) = rank_F + 1.

    Futures are tried in order of how much of the new row (``row``, (1, m), empty when only the
    future side lacks rank) the basis leaves unexplained on them after fitting it on F_t.
    """
    f_cols = future_columns(columns, F, V)
    known = set(F)
    new_futures = [f for f in columns if f not in known]
    if row.shape[0]:
        coef = torch.linalg.lstsq(basis[:, f_cols].T, row[:, f_cols].T).solution  # (k, 1)
        err = row - coef.T @ basis  # (1, m): what the basis cannot explain from F_t's fit
        per_future = err.view(len(columns), V).norm(dim=1)  # (|columns|,) future-major blocks
        pos = {f: j for j, f in enumerate(columns)}
        gain = per_future[torch.tensor([pos[f] for f in new_futures], dtype=torch.long)].tolist()
    else:
        gain = [0.0] * len(new_futures)
    for j in sorted(range(len(new_futures)), key=lambda j: -gain[j]):
        cols = torch.cat([f_cols, future_columns(columns, [new_futures[j]], V)])
        trial = torch.cat([basis[:, cols], row[:, cols]])  # (k(+1), (|F_t|+1)·V)
        if rank_above(trial, tol) > rank_F:
            return new_futures[j]
    return None
