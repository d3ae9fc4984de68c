"""Factorised extended-logit blocks of a time-varying ISAN (paper A, Fact C.4 made computational).

A time-varying ISAN is linear in its state, so L[h, (f, z)] = w_{f,t,z} · x_h with x_h the state
after h (t = len h) and w_{f,t,z} = B̃[t+|f|, z] A[t+|f|−1, f_|f|] ⋯ A[t, f_1] (B̃ = B with its
mean over tokens removed). The states are computed once per history and the (k, d) maps once per
(future, history length); each block of the matrix is one matmul. ``logitrank.algorithms.logit_matrix``
reaches this through :meth:`logitrank.synth.TimeVaryingISAN.logit_block`.
"""

from __future__ import annotations

import torch

from logitrank._tokens import group_by_length as _group_by_length
from logitrank._tokens import stack_rows as _stack

__all__ = ["isan_logit_block"]


def isan_logit_block(model, H, F, cols, memory_budget, update):
    """Factorised evaluation for a time-varying ISAN (module docstring); → (n, m, k) tensor or None.

    ``H`` is a list of token tuples, or a (n, t) LongTensor of histories of one length (no
    conversion to Python tuples: learners pass thousands of sampled prefixes this way).
    """
    if isinstance(H, torch.Tensor):
        rows = H.to(model.device)
        if rows.shape[0] == 0 or not F:
            return None
        groups = {rows.shape[1]: (rows, list(range(rows.shape[0])))}
    else:
        if not H or not F:
            return None
        groups = {t: (_stack(H, hi, t, model.device), hi) for t, hi in _group_by_length(H).items()}
    V, d, dev, dt = model.vocab_size, model.hidden_dim, model.device, model.dtype
    k = V if cols is None else cols.shape[1]
    B_c = model.B - model.B.mean(dim=1, keepdim=True)  # (T, V, d): centred readouts
    out = torch.empty(len(H), len(F) * k, dtype=dt, device=dev)
    itemsize = torch.empty(0, dtype=dt).element_size()
    for t, (stacked, hi) in sorted(groups.items(), key=lambda item: item[0]):
        # 1. The state after each history of length t, computed once: (n_t, d).
        X = model.states(stacked)[:, -1]  # (n_t, d)
        hi_t = torch.tensor(hi, device=dev)
        # scratch per future: its maps (k, d) twice, a (d, d) product and its output block (n_t, k) twice
        per_future = itemsize * (2 * k * d + 2 * d * d + 2 * len(hi) * k)
        chunk = max(1, memory_budget // per_future)
        for j0 in range(0, len(F), chunk):
            j1 = min(j0 + chunk, len(F))
            # 2. Maps w_{f,t,z} = B̃[t+|f|, z] A[t+|f|−1, f_|f|] ⋯ A[t, f_1] for futures j0 … j1−1.
            W = torch.empty(j1 - j0, k, d, dtype=dt, device=dev)  # (c, k, d)
            for b, local in sorted(_group_by_length(F[j0:j1]).items()):
                J = torch.tensor(local, device=dev)  # positions inside the chunk
                W[J] = _future_maps(model, B_c, _stack(F, [j0 + i for i in local], b, dev), t,
                                    None if cols is None else cols[j0 + J])  # (c_b, k, d)
            # 3. One matmul for the block, (n_t, d) @ (d, c·k), copied into the rows of length t.
            block = X @ W.reshape(-1, d).T  # (n_t, c*k)
            out[:, j0 * k : j1 * k].index_copy_(0, hi_t, block)
            update(len(hi) * (j1 - j0))
    return out.reshape(len(H), len(F), k)


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
