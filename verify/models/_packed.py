"""The packed, head-sparse evaluation of L_{M,k}(H, F) for causal networks (issue 14, item 2).

Paper A, Definition 2.2 asks for the next-token logits after h ∘ f for every history h and future
f. A causal network reads a sequence once and scores every position, so the futures of one *pack*
can ride behind their history in a single sequence

    [start, h_1 … h_a | f^(1)_1 … f^(1)_{ℓ1} | f^(2)_1 … f^(2)_{ℓ2} | …]

under a **block-causal** attention mask: a history position sees the history up to itself; a
position of future j sees the whole history and future j up to itself, never another future. Its
position id continues after the history (a + t), so each future computes exactly what it would
right after h, and the logits at the last position of future j are L_M[· | h ∘ f^(j)]. The empty
future reads the history's last position.

Steps (numbered in the code):

1. futures (nonempty) are packed first-fit-decreasing into packs of at most ``pack_tokens``
   tokens (a longer future gets a pack of its own);
2. one row per (history, pack), pack-major; within a pack the histories are sorted by length and
   batched under a budget of positions per pass, right-padded to the batch's longest row (pad
   positions see only the history and pads; no real position sees them);
3. one forward pass per batch returns final hidden states x (after the last norm);
4. only the needed logits are formed, already mean-centred over the whole vocabulary
   (Definition 2.1): L[v | ·] − mean_u L[u | ·] = x·(w_v − w̄) + (b_v − b̄), with W the (V, d) head
   and w̄ its mean row — k columns per future instead of V, in one ``bmm`` per batch.

No key/value cache is kept or copied; the history is recomputed once per pack, which costs
a/(pack tokens) extra positions (``pack_tokens`` trades that against dense attention over the
packed row). The head runs in float32 (float64 for float64 models) whatever the body's dtype.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["pack_futures", "packed_logit_block", "DEFAULT_PACK_TOKENS"]

#: Future tokens per packed row when the model does not set ``pack_tokens``.
DEFAULT_PACK_TOKENS = 192


def pack_futures(lengths, budget: int) -> list[list[int]]:
    """First-fit-decreasing packs of future indices whose lengths sum to at most ``budget``.

    Parameters
    ----------
    lengths : (m,) sequence of int >= 1
    budget : int
        Most tokens per pack; a single longer future gets a pack of its own.

    Returns
    -------
    list of lists of indices into ``lengths``; every index appears once.

    Examples
    --------
    >>> pack_futures([3, 5, 2, 4], 7)
    [[1, 2], [3, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda j: (-lengths[j], j))
    packs: list[list[int]] = []
    room: list[int] = []
    for j in order:
        for q, r in enumerate(room):
            if lengths[j] <= r:
                packs[q].append(j)
                room[q] -= lengths[j]
                break
        else:
            packs.append([j])
            room.append(budget - lengths[j])
    return packs


def _head(model, device):
    """Centred head (V, d) and centred bias (V,) or None, in the head's compute dtype."""
    W, b = model._head()
    V = model.vocab_size
    hd = torch.float64 if model.dtype == torch.float64 else torch.float32
    W = W[:V].to(device=device, dtype=hd)
    Wc = W - W.mean(0, keepdim=True)  # (V, d)
    bc = None
    if b is not None:
        b = b[:V].to(device=device, dtype=hd)
        bc = b - b.mean()  # (V,)
    return Wc, bc, hd


@torch.no_grad()
def packed_logit_block(model, H, F, columns, update=None, *, pack_tokens: int | None = None) -> torch.Tensor:
    """(n, m, k) block of mean-centred logits through packed passes (module docstring).

    Parameters
    ----------
    model : CausalLM with ``_hidden(ids, positions, mask)`` and ``_head()``
    H : (n,) list of token tuples
    F : (m,) list of token tuples
    columns : (m, k) LongTensor on the model's device, or None for all V tokens
    update : callable(int), optional
        Called with the number of (h, f) cells finished.
    pack_tokens : int, optional
        Future tokens per pack (default ``model.pack_tokens``).

    Returns
    -------
    (n, m, k) tensor in ``model.dtype``.
    """
    dev, V, s0 = model.device, model.vocab_size, model._n_start
    n, m = len(H), len(F)
    k = V if columns is None else columns.shape[1]
    out = torch.empty(n, m, k, dtype=model.dtype, device=dev)
    if not n or not m:
        return out
    Wc, bc, hd = _head(model, dev)
    budget = int(pack_tokens or getattr(model, "pack_tokens", None) or DEFAULT_PACK_TOKENS)
    # 1. packs of nonempty futures; the empty futures are read at the history's last position.
    empty = [j for j, f in enumerate(F) if not f]
    nonempty = [j for j, f in enumerate(F) if f]
    packs = [[nonempty[p] for p in pack] for pack in pack_futures([len(F[j]) for j in nonempty], budget)]
    if not packs:
        packs = [[]]
    hist_len = np.array([s0 + len(h) for h in H])  # a_i, start token included
    hist_ids = [([model.bos_token_id] if s0 else []) + list(h) for h in H]
    by_length = np.argsort(hist_len, kind="stable")
    empty_t = torch.tensor(empty, dtype=torch.long, device=dev)
    for qi, pack in enumerate(packs):
        lens = np.array([len(F[j]) for j in pack], dtype=np.int64)
        ends = np.cumsum(lens)  # end offset of each future inside the pack
        T = int(ends[-1]) if len(pack) else 0
        f_ids = [t for j in pack for t in F[j]]
        seg = np.repeat(np.arange(1, len(pack) + 1), lens)  # (T,) future number of each pack token
        step = np.concatenate([np.arange(l) for l in lens]) if len(pack) else np.zeros(0, np.int64)
        pack_t = torch.tensor(pack, dtype=torch.long, device=dev)
        Wq = (Wc if columns is None else Wc[columns[pack_t]]) if pack else None  # (V, d) or (p, k, d)
        bq = None if bc is None or not pack else (bc if columns is None else bc[columns[pack_t]])  # (V,) or (p, k)
        # 2. batches of histories under the position budget (rows of one pack differ only by a_i).
        rows_per_pass = max(1, model.max_positions // max(1, int(hist_len.max()) + T))
        for b0 in range(0, n, rows_per_pass):
            rows = by_length[b0 : b0 + rows_per_pass]
            B, S = len(rows), int(hist_len[rows].max()) + T
            ids = np.zeros((B, S), dtype=np.int64)
            pos = np.zeros((B, S), dtype=np.int64)
            sg = np.full((B, S), -1, dtype=np.int64)  # 0 history, j >= 1 future j of the pack, -1 pad
            for r, i in enumerate(rows):
                a = hist_len[i]
                ids[r, :a] = hist_ids[i]
                ids[r, a : a + T] = f_ids
                pos[r, :a] = np.arange(a)
                pos[r, a : a + T] = a + step
                sg[r, :a] = 0
                sg[r, a : a + T] = seg
            ids_t = torch.from_numpy(ids).to(dev)  # (B, S)
            pos_t = torch.from_numpy(pos).to(dev)  # (B, S)
            sg_t = torch.from_numpy(sg).to(dev)  # (B, S)
            causal = torch.ones(S, S, dtype=torch.bool, device=dev).tril_()  # (S, S)
            mask = causal & ((sg_t[:, None, :] == 0) | (sg_t[:, None, :] == sg_t[:, :, None]))  # (B, S_q, S_k)
            # 3. one pass: final hidden states.
            x = model._hidden(ids_t, pos_t, mask[:, None])  # (B, S, d)
            rows_t = torch.as_tensor(rows, dtype=torch.long, device=dev)  # (B,)
            a_t = torch.as_tensor(hist_len[rows], dtype=torch.long, device=dev)  # (B,)
            done = 0
            # 4. centred logits where needed.
            if empty and qi == 0:
                last = x[torch.arange(B, device=dev), a_t - 1].to(hd)  # (B, d)
                full = last @ Wc.T + (0 if bc is None else bc)  # (B, V)
                blk = full[:, None, :].expand(B, len(empty), V) if columns is None else \
                    full.gather(1, columns[empty_t].reshape(1, -1).expand(B, -1)).reshape(B, len(empty), k)
                out[rows_t[:, None], empty_t[None, :]] = blk.to(model.dtype)
                done += B * len(empty)
            if pack:
                at = a_t[:, None] + torch.as_tensor(ends - 1, device=dev)[None, :]  # (B, p) last position of each future
                xs = x[torch.arange(B, device=dev)[:, None], at].to(hd)  # (B, p, d)
                if columns is None:
                    blk = xs @ Wq.T  # (B, p, V)
                else:
                    blk = torch.bmm(xs.transpose(0, 1), Wq.transpose(1, 2)).transpose(0, 1)  # (p, B, d)@(p, d, k) → (B, p, k)
                if bq is not None:
                    blk = blk + bq
                out[rows_t[:, None], pack_t[None, :]] = blk.to(model.dtype)
                done += B * len(pack)
            if update is not None and done:
                update(done)
    return out
