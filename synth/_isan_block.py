"""Factorised extended-logit blocks of a time-varying ISAN (paper A, Fact C.4 made computational).

A time-varying ISAN is linear in its state, so L[h, (f, z)] = w_{f,t,z} · x_h with x_h the state
after h (t = len h) and w_{f,t,z} = B̃[t+|f|, z] A[t+|f|−1, f_|f|] ⋯ A[t, f_1] (B̃ = B with its
mean over tokens removed). The states are computed once per history and the (k, d) maps once per
(future, history length); each block of the matrix is one matmul. ``logitrank.algorithms.logit_matrix``
reaches this through :meth:`logitrank.synth.TimeVaryingISAN.logit_block`.
"""

from __future__ import annotations

import itertools

import torch

from logitrank._tokens import group_by_length as _group_by_length
from logitrank._tokens import stack_rows as _stack

__all__ = ["isan_future_blocks", "isan_gram_factors", "isan_logit_block"]


def _history_groups(model, H):
    """Histories grouped by length with their states, computed once: [(t, rows (n_t,) LongTensor, X (n_t, d))]."""
    dev = model.device
    if isinstance(H, torch.Tensor):
        rows = H.to(dev)
        groups = {rows.shape[1]: (rows, list(range(rows.shape[0])))}
    else:
        groups = {t: (_stack(H, hi, t, dev), hi) for t, hi in _group_by_length(H).items()}
    out = []
    for t, (stacked, hi) in sorted(groups.items(), key=lambda item: item[0]):
        X = model._final_states(stacked)  # (n_t, d): the state after each history, once
        contiguous = hi == list(range(hi[0], hi[0] + len(hi)))
        rows = slice(hi[0], hi[0] + len(hi)) if contiguous else torch.tensor(hi, device=dev, dtype=torch.long)
        out.append((t, rows, X))
    return out


def _block(model, B_c, groups, F, j0, j1, cols, n, out=None):
    """L(H, F[j0:j1]) from precomputed history states: → (n, (j1 − j0)·k)."""
    V, d, dev, dt = model.vocab_size, model.hidden_dim, model.device, model.dtype
    k = V if cols is None else cols.shape[1]
    if out is None:
        out = torch.empty(n, (j1 - j0) * k, dtype=dt, device=dev)
    by_len = sorted(_group_by_length(F[j0:j1]).items())
    for t, hi_t, X in groups:
        # 2. Maps w_{f,t,z} = B̃[t+|f|, z] A[t+|f|−1, f_|f|] ⋯ A[t, f_1] for futures j0 … j1−1.
        W = torch.empty(j1 - j0, k, d, dtype=dt, device=dev)  # (c, k, d)
        for b, local in by_len:
            J = torch.tensor(local, device=dev)  # positions inside the chunk
            W[J] = _future_maps(model, B_c, _stack(F, [j0 + i for i in local], b, dev), t,
                                None if cols is None else cols[j0 + J])  # (c_b, k, d)
        # 3. One matmul for the block, (n_t, d) @ (d, c·k), into the rows of length t (in place when
        #    those rows are consecutive, e.g. histories sorted by length as the Gram path sends them).
        if isinstance(hi_t, slice) and out.is_contiguous():
            torch.mm(X, W.reshape(-1, d).T, out=out[hi_t])  # (n_t, c*k)
        else:
            out[hi_t] = X @ W.reshape(-1, d).T  # (n_t, c*k)
    return out


def isan_gram_factors(model, H, F, cols, futures_per_block: int):
    """X̃ (n, ℓ·d) and M (ℓ·d, ℓ·d) with L Lᵀ = X̃ M X̃ᵀ, for ℓ distinct history lengths (Fact C.4).

    Row i of X̃ holds x_{h_i} in the d columns of its length's slot (zeros elsewhere); M sums, over
    futures, the products W_{f,t}ᵀ W_{f,t'} of the (k, d) maps of every pair of lengths. M costs
    2·m·k·(ℓd)² FLOPs instead of the n²·m·k of summing the blocks: exact, but its rounding differs.
    """
    n = H.shape[0] if isinstance(H, torch.Tensor) else len(H)
    V, d, dev, dt = model.vocab_size, model.hidden_dim, model.device, model.dtype
    k = V if cols is None else cols.shape[1]
    B_c = model.B - model.B.mean(dim=1, keepdim=True)  # (T, V, d)
    groups = _history_groups(model, H) if n else []
    ell = len(groups)
    Xt = torch.zeros(n, ell * d, dtype=torch.float64, device=dev)
    for g, (t, rows, X) in enumerate(groups):
        Xt[rows, g * d : (g + 1) * d] = X.to(torch.float64)  # (n_t, d) into slot g
    M = torch.zeros(ell * d, ell * d, dtype=torch.float64, device=dev)
    for j0 in range(0, len(F), futures_per_block):
        j1 = min(j0 + futures_per_block, len(F))
        W = torch.empty(j1 - j0, k, ell * d, dtype=dt, device=dev)  # (c, k, ℓ·d): maps of every length
        for g, (t, _, _) in enumerate(groups):
            for b, local in sorted(_group_by_length(F[j0:j1]).items()):
                J = torch.tensor(local, device=dev)
                W[J, :, g * d : (g + 1) * d] = _future_maps(
                    model, B_c, _stack(F, [j0 + i for i in local], b, dev), t, None if cols is None else cols[j0 + J])
        W64 = W.reshape(-1, ell * d).to(torch.float64)  # (c·k, ℓ·d)
        M.addmm_(W64.T, W64)  # (ℓ·d, ℓ·d)
    return Xt, M


def isan_logit_block(model, H, F, cols, memory_budget, update):
    """Factorised evaluation for a time-varying ISAN (module docstring); → (n, m, k) tensor or None.

    ``H`` is a list of token tuples, or a (n, t) LongTensor of histories of one length (no
    conversion to Python tuples: learners pass thousands of sampled prefixes this way).
    """
    n = H.shape[0] if isinstance(H, torch.Tensor) else len(H)
    if n == 0 or not F:
        return None
    V, d, dt = model.vocab_size, model.hidden_dim, model.dtype
    k = V if cols is None else cols.shape[1]
    B_c = model.B - model.B.mean(dim=1, keepdim=True)  # (T, V, d): centred readouts
    groups = _history_groups(model, H)  # 1. states once per history
    out = torch.empty(n, len(F) * k, dtype=dt, device=model.device)
    itemsize = torch.empty(0, dtype=dt).element_size()
    # scratch per future: its maps (k, d) twice, a (d, d) product and its output block (n, k) twice
    per_future = itemsize * (2 * k * d + 2 * d * d + 2 * n * k)
    chunk = max(1, memory_budget // per_future)
    for j0 in range(0, len(F), chunk):
        j1 = min(j0 + chunk, len(F))
        _block(model, B_c, groups, F, j0, j1, cols, n, out=out[:, j0 * k : j1 * k])
        update(n * (j1 - j0))
    return out.reshape(n, len(F), k)


def isan_future_blocks(model, H, F, cols, futures_per_block: int, stops=(), reuse: bool = False):
    """Yield (end, L(H, F[start:end])) as (n, c·k) blocks over consecutive futures, the history
    states computed once for all blocks (the Gram path of ``logitrank.algorithms``). Block ends
    also fall on every value in ``stops``. With ``reuse`` every block is written into one buffer
    (a fresh ~100 MB tensor per block spent more time in page faults than in its matmul)."""
    n = H.shape[0] if isinstance(H, torch.Tensor) else len(H)
    k = model.vocab_size if cols is None else cols.shape[1]
    B_c = model.B - model.B.mean(dim=1, keepdim=True)  # (T, V, d)
    groups = _history_groups(model, H) if n else []
    bounds = sorted({0, len(F), *[s for s in stops if 0 < s < len(F)]})
    widest = max((min(futures_per_block, hi - lo) for lo, hi in itertools.pairwise(bounds)), default=0)
    buf = torch.empty(n * widest * k, dtype=model.dtype, device=model.device) if reuse else None
    for lo, hi in itertools.pairwise(bounds):
        for j0 in range(lo, hi, futures_per_block):
            j1 = min(j0 + futures_per_block, hi)
            out = None if buf is None else buf[: n * (j1 - j0) * k].view(n, (j1 - j0) * k)
            yield j1, _block(model, B_c, groups, F, j0, j1, cols, n, out=out)


def _future_maps(model, B_c, Fb: torch.Tensor, t: int, cols_b) -> torch.Tensor:
    """(c, b) futures of one length b after histories of length t → their (c, k, d) maps.

    Two exact orders of the same product: with k > d the (d, d) transition product P_f is built
    first (b·d³ per future) and read out once (k·d²); otherwise the (k, d) readout rows are pushed
    through the transitions right to left (b·k·d²).
    """
    c, b = Fb.shape
    V, d = model.vocab_size, model.hidden_dim
    rows = B_c[t + b] if cols_b is None else None  # (V, d) shared readout when every token is kept
    k = V if cols_b is None else cols_b.shape[1]
    if k > d and b > 0:
        P = model.A[t + b - 1].index_select(0, Fb[:, b - 1])  # (c, d, d)
        for s in reversed(range(b - 1)):
            P = torch.bmm(P, model.A[t + s].index_select(0, Fb[:, s]))  # (c, d, d)
        if rows is not None:
            return torch.matmul(rows, P)  # (c, V, d)
        return torch.bmm(B_c[t + b][cols_b], P)  # (c, k, d)
    W = rows.expand(c, V, d) if rows is not None else B_c[t + b][cols_b]  # (c, k, d)
    for s in reversed(range(b)):
        W = torch.bmm(W, model.A[t + s].index_select(0, Fb[:, s]))  # (c, k, d)
    return W
