"""The packed, head-sparse evaluation of L_{M,k}(H, F) for causal networks (issue 14, item 2).

Paper A, Definition 2.2 asks for the next-token logits after h ∘ f for every history h and future
f. A causal network scores every position of its input at once, so the futures of one *pack* can
ride behind their history in a single pass

    [history cache: start, h_1 … h_a | f^(1)_1 … f^(1)_{ℓ1} | f^(2)_1 … f^(2)_{ℓ2} | …]

under a **block-causal** attention mask: a position of future j sees the whole history and future j
up to itself, never another future. Its position id continues after the history (a + t), so each
future computes exactly what it would right after h, and the final hidden state of future j gives
L_M[· | h ∘ f^(j)]. The empty future reads the history's last position.

Steps (numbered in the code):

1. futures (nonempty) are packed first-fit-decreasing into packs of at most ``pack_tokens``
   tokens (a longer future gets a pack of its own); by default 128, raised up to min(512, width d) when
   there are so few histories that a pass would stay far below ``max_positions`` (measured on SmolLM2's
   shape with 16 histories: 512 took 0.55–0.8 of 128's time; fewer, fuller passes win on a CPU);
2. histories, sorted by length, are prefilled once per group (left-padded to the group's longest,
   pad keys masked, position ids starting at 0 on each row's first real token); the group size
   keeps group × (history + pack) positions under ``max_positions``;
3. for every pack, one pass over the group on top of the group's own cache (the cache's rows are
   the group's rows: nothing is copied or repeated) returns final hidden states x;
4. only the needed logits are formed, already mean-centred over the whole vocabulary
   (Definition 2.1): L[v | ·] − mean_u L[u | ·] = x·(w_v − w̄) + (b_v − b̄), with W the (V, d) head
   and w̄ its mean row — k columns per future instead of V, in one ``bmm`` per pass.

A pass costs the pack's positions plus attention over (history + pack) keys, the price of the dense
mask; ``pack_tokens`` trades that against the number of passes. The head runs in float32 (float64
for float64 models) whatever the body's dtype.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["pack_futures", "packed_logit_block", "DEFAULT_PACK_TOKENS"]

#: Future tokens per packed row when the model does not set ``pack_tokens``.
DEFAULT_PACK_TOKENS = 128
#: Largest automatic pack (when few histories leave passes short of ``max_positions``).
MAX_AUTO_PACK_TOKENS = 512


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
    model : CausalLM with ``_hidden(ids, positions, mask, past)`` and ``_head()``
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
    hist_len = np.array([s0 + len(h) for h in H])  # a_i, start token included
    budget = pack_tokens or getattr(model, "pack_tokens", None)
    if not budget:  # few histories: longer packs keep each pass near max_positions (fewer, fuller passes)
        # capped near the width d: dense attention over a pack costs ~(a + T)/(6d) of a position's matmuls
        cap = min(MAX_AUTO_PACK_TOKENS, max(DEFAULT_PACK_TOKENS, int(getattr(model, "width", 0) or 0)))
        budget = int(min(cap, max(DEFAULT_PACK_TOKENS, model.max_positions // n - int(hist_len.mean()))))
    # 1. packs of nonempty futures; the empty futures are read at the history's last position.
    empty = [j for j, f in enumerate(F) if not f]
    nonempty = [j for j, f in enumerate(F) if f]
    packs = [_Pack([nonempty[p] for p in pack], F, columns, Wc, bc, dev)
             for pack in pack_futures([len(F[j]) for j in nonempty], budget)]
    T_max = max((p.T for p in packs), default=0)
    hist_ids = [([model.bos_token_id] if s0 else []) + list(h) for h in H]
    order = np.argsort(hist_len, kind="stable")
    empty_t = torch.tensor(empty, dtype=torch.long, device=dev)
    # 2. groups of histories, prefilled once.
    g0 = 0
    while g0 < n:
        A = int(hist_len[order[min(n, g0 + 1) - 1]])
        B = max(1, model.max_positions // (A + T_max))
        while True:  # the group's longest history sets A; shrink B until it fits
            rows = order[g0 : g0 + B]
            A = int(hist_len[rows].max())
            if B == 1 or B * (A + T_max) <= model.max_positions:
                break
            B = max(1, model.max_positions // (A + T_max))
        g0 += len(rows)
        B = len(rows)
        ids = np.zeros((B, A), dtype=np.int64)
        for r, i in enumerate(rows):
            ids[r, A - hist_len[i] :] = hist_ids[i]
        pads = torch.as_tensor(A - hist_len[rows], device=dev)  # (B,)
        slot = torch.arange(A, device=dev)
        real = slot[None, :] >= pads[:, None]  # (B, A) False on left pads
        pos = (slot[None, :] - pads[:, None]).clamp_min(0)  # (B, A)
        causal = slot[None, :] <= slot[:, None]  # (A, A)
        mask = (causal[None] & real[:, None, :]) | torch.eye(A, dtype=torch.bool, device=dev)[None]  # (B, A, A)
        x, past = model._hidden(torch.from_numpy(ids).to(dev), pos, mask[:, None], None)  # (B, A, d)
        rows_t = torch.as_tensor(rows, dtype=torch.long, device=dev)  # (B,)
        a_t = torch.as_tensor(hist_len[rows], dtype=torch.long, device=dev)  # (B,)
        if empty:
            last = x[:, -1].to(hd)  # (B, d): every row ends on its last real token
            full = last @ Wc.T + (0 if bc is None else bc)  # (B, V)
            blk = full[:, None, :].expand(B, len(empty), V) if columns is None else \
                full.gather(1, columns[empty_t].reshape(1, -1).expand(B, -1)).reshape(B, len(empty), k)
            out[rows_t[:, None], empty_t[None, :]] = blk.to(model.dtype)
            if update is not None:
                update(B * len(empty))
        # 3. every pack on top of the group's cache.
        for pk in packs:
            fpos = a_t[:, None] + pk.step[None, :]  # (B, T) position ids after each history
            fmask = torch.cat([real[:, None, :].expand(B, pk.T, A), pk.mask[None].expand(B, -1, -1)], 2)  # (B, T, A+T)
            ids_f = pk.ids[None].expand(B, -1)  # (B, T)
            xf, _ = model._hidden(ids_f, fpos, fmask[:, None], past)  # (B, T, d)
            # 4. centred logits at the last position of each future.
            xs = xf[:, pk.ends - 1].to(hd)  # (B, p, d)
            if columns is None:
                blk = xs @ pk.W.T  # (B, p, V)
            else:
                blk = torch.bmm(xs.transpose(0, 1), pk.W.transpose(1, 2)).transpose(0, 1)  # (p, B, d)@(p, d, k) → (B, p, k)
            if pk.b is not None:
                blk = blk + pk.b
            out[rows_t[:, None], pk.futures[None, :]] = blk.to(model.dtype)
            if update is not None:
                update(B * len(pk.futures))
    return out


class _Pack:
    """One pack: its token ids (T,), step within each future (T,), block-causal mask (T, T), the last
    position of each future (p,), and the centred head rows it needs ((V, d) or (p, k, d), bias)."""

    def __init__(self, futures, F, columns, Wc, bc, dev):
        lens = [len(F[j]) for j in futures]
        self.T = sum(lens)
        self.futures = torch.tensor(futures, dtype=torch.long, device=dev)  # (p,)
        self.ids = torch.tensor([t for j in futures for t in F[j]], dtype=torch.long, device=dev)  # (T,)
        self.step = torch.cat([torch.arange(l, device=dev) for l in lens])  # (T,)
        seg = torch.repeat_interleave(torch.arange(len(futures), device=dev), torch.tensor(lens, device=dev))  # (T,)
        slot = torch.arange(self.T, device=dev)
        self.mask = (seg[None, :] == seg[:, None]) & (slot[None, :] <= slot[:, None])  # (T, T) block-causal
        self.ends = torch.tensor(lens, device=dev).cumsum(0)  # (p,)
        self.W = Wc if columns is None else Wc[columns[self.futures]]  # (V, d) or (p, k, d)
        self.b = None if bc is None else (bc if columns is None else bc[columns[self.futures]])  # (V,) or (p, k)
