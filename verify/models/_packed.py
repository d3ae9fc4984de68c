"""The packed, head-sparse evaluation of L_{M,k}(H, F) for causal networks (issue 14, item 2).

Paper A, Definition 2.2 asks for the next-token logits after h ∘ f for every history h and future
f. A causal network scores every position of its input at once, so the futures of one *pack* can
ride behind their history in a single row

    [history cache: start, h_1 … h_a | f^(1)_1 … f^(1)_{ℓ1} | f^(2)_1 … f^(2)_{ℓ2} | … | pads]

under a **block-causal** attention mask: a position of future j sees the whole history and future j
up to itself, never another future. Its position id continues after the history (a + t), so each
future computes exactly what it would right after h, and the final hidden state of future j gives
L_M[· | h ∘ f^(j)]. The empty future reads the history's last position.

Steps (numbered in the code):

1. futures (nonempty) are packed first-fit-decreasing into packs of at most ``pack_tokens`` tokens
   (default: the longest future, at least ``DEFAULT_PACK_TOKENS`` = 64; a longer future gets a
   pack of its own), longest pack first;
2. histories, sorted by length, are prefilled once per group (left-padded to the group's longest,
   pad keys masked, position ids starting at 0 on each row's first real token); a group is as
   many histories as one pass holds rows of the longest pack (``PASS_POSITIONS`` // T), and its
   prefill stays under ``max_positions``;
3. a pass runs P packs × the group's B histories as P·B rows of T tokens (packs padded to the
   pass's longest; a pack shorter than 3/4 of it starts the next pass), each row on top of its
   history's cache (repeated P times along the batch), at most ``PASS_POSITIONS`` new positions;
4. only the needed logits are formed, already mean-centred over the whole vocabulary
   (Definition 2.1): L[v | ·] − mean_u L[u | ·] = x·(w_v − w̄) + (b_v − b̄), with W the (V, d) head
   and w̄ its mean row — k columns per future instead of V, in one ``bmm`` per pass; only the
   needed rows of W are gathered and centred.

**Costs (measured; benchmarks/bench_hf_cache.py).** Every query attends to all (a + T) keys of its
row (the mask is dense), where a raw forward of h ∘ f needs about a + ℓ/2; and every pass copies
its rows' history cache (the repeat here, the models' own key/value concatenation). Short packs
cut the first, long packs the second. Packed time / raw forward time per needed position, one
slice of 16 histories × 128 futures, interleaved, min of 3–8 runs, load 1.5–2.5 (the spreads
overlap on this shared machine; the order held in every run but one): T = 64 at 0.92–1.01 (tiny
GPT, d = 96) and 0.95–1.12 (GPT-2 4 × 256); T = 32 at 0.88–0.97 and 0.88–1.06; the former design
(one pack of T = 128–256 per pass, dense over the whole pack) at 0.86–0.92 and 0.82–0.95. Passes of
1024 positions beat 2048–8192: activations stay in the core's cache (GELU ran 2× faster per
position than in 3–8k-position passes). Masks are additive (0 / −inf, in the body's dtype).
The head runs in float32 (float64 for float64 models) whatever the body's dtype.
"""

from __future__ import annotations

import numpy as np
import torch

from logitrank._validation import check_int

__all__ = ["DEFAULT_PACK_TOKENS", "PASS_POSITIONS", "pack_futures", "packed_logit_block"]

#: Least future tokens per pack when neither the call nor the model sets ``pack_tokens``.
DEFAULT_PACK_TOKENS = 64
#: Most new positions (rows × pack tokens) per packed pass on a CPU (capped by the model's
#: ``max_positions``; on CUDA a pass holds ``max_positions``: small passes would starve a GPU).
PASS_POSITIONS = 1024
#: Key slots a pass may hold (repeated history cache plus packs), as a multiple of its positions.
KEY_SLOTS = 4


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
        Future tokens per pack (default ``model.pack_tokens``, else the longest future but at least
        ``DEFAULT_PACK_TOKENS``).

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
    head = _CentredHead(model, columns)
    hist_len = np.array([s0 + len(h) for h in H])  # a_i, start token included
    # 1. packs of nonempty futures, longest first; the empty futures are read at the history's last position.
    empty = [j for j, f in enumerate(F) if not f]
    packs = _ordered_packs(model, F, pack_tokens)
    T_max = sum(len(F[j]) for j in packs[0]) if packs else 0
    hist_ids = [([model.bos_token_id] if s0 else []) + list(h) for h in H]
    order = np.argsort(hist_len, kind="stable")
    empty_t = torch.tensor(empty, dtype=torch.long, device=dev)
    per_pass = model.max_positions if dev.type == "cuda" else min(model.max_positions, PASS_POSITIONS)
    # 2. groups of histories, prefilled once.
    g0 = 0
    while g0 < n:
        rows, A = _history_group(model, order, hist_len, g0, per_pass, T_max)
        g0 += len(rows)
        B = len(rows)
        x, past, real = _prefill(model, head, hist_ids, hist_len, rows, A)
        rows_t = torch.as_tensor(rows, dtype=torch.long, device=dev)  # (B,)
        a_t = torch.as_tensor(hist_len[rows], dtype=torch.long, device=dev)  # (B,)
        if empty:  # every row ends on its last real token
            last = x[:, -1]  # (B, d)
            blk = head(last[None].expand(len(empty), -1, -1), empty_t)  # (e, B, k)
            out[rows_t[None, :], empty_t[:, None]] = blk.to(model.dtype)
            if update is not None:
                update(B * len(empty))
        _packed_passes(model, head, out, packs, F, rows_t, (past, real, a_t), per_pass, update)
    return out


def _ordered_packs(model, F, pack_tokens: int | None) -> list[list[int]]:
    """Step 1: the nonempty futures' packs (indices into ``F``), longest pack first."""
    nonempty = [j for j, f in enumerate(F) if f]
    lengths = [len(F[j]) for j in nonempty]
    if pack_tokens is None:
        pack_tokens = getattr(model, "pack_tokens", None)
    budget = (max(DEFAULT_PACK_TOKENS, max(lengths, default=0)) if pack_tokens is None
              else check_int("pack_tokens", pack_tokens, minimum=1))
    return sorted(([nonempty[p] for p in pack] for pack in pack_futures(lengths, budget)),
                  key=lambda pk: -sum(len(F[j]) for j in pk))


def _history_group(model, order, hist_len, g0: int, per_pass: int, T_max: int) -> tuple[np.ndarray, int]:
    """Step 2: the next group of histories (from ``g0`` in length order) and its longest length A."""
    B = max(1, per_pass // max(1, T_max))  # one pass holds the longest pack over the whole group
    while True:  # the group's longest history sets A; shrink B until its prefill fits too
        rows = order[g0 : g0 + B]
        A = int(hist_len[rows].max())
        if B == 1 or B * (A + T_max) <= model.max_positions:
            return rows, A
        B = max(1, model.max_positions // (A + T_max))


def _prefill(model, head, hist_ids, hist_len, rows, A: int) -> tuple:
    """Step 2: one pass over the group's histories, left-padded to A → (hidden states (B, A, d), cache, real (B, A))."""
    dev = model.device
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
    x, past = model._hidden(torch.from_numpy(ids).to(dev), pos, _additive(mask[:, None], head.body_dtype), None)  # (B, A, d)
    return x, past, real


def _packed_passes(model, head, out, packs, F, rows_t, group: tuple, per_pass: int, update) -> None:
    """Steps 3–4: every pack's centred logits on one group's ``(cache, real (B, A), lengths (B,))``, into ``out``."""
    past, real, a_t = group
    B, A = real.shape
    # 3. passes of P packs × B histories: row p·B + b holds pack p on top of history b's cache.
    #    Consecutive passes mostly share P: the repeated cache, key mask and positions are kept
    #    for the last P only (one copy alive, as when each pass made its own).
    q0, rep_P, sub, real_R, a_R = 0, 1, past, real, a_t
    while q0 < len(packs):
        P = _packs_per_pass(packs, q0, F, B, A, per_pass)
        pas = _Pass(packs[q0 : q0 + P], F, model.device)
        q0 += P
        R = P * B
        if P != rep_P:
            sub = past if P == 1 else [(k_.repeat(P, *[1] * (k_.ndim - 1)), v_.repeat(P, *[1] * (v_.ndim - 1)))
                                       for k_, v_ in past]  # (R, …) history caches
            rep_P, real_R, a_R = P, real.repeat(P, 1), a_t.repeat(P)  # (R, A), (R,)
        fpos = a_R[:, None] + pas.step.repeat_interleave(B, 0)  # (R, T) position ids after each history
        fmask = torch.cat([real_R[:, None, :].expand(R, pas.T, A),
                           pas.mask.repeat_interleave(B, 0)], 2)  # (R, T, A+T)
        ids_f = pas.ids.repeat_interleave(B, 0)  # (R, T)
        xf, _ = model._hidden(ids_f, fpos, _additive(fmask[:, None], head.body_dtype), sub)  # (R, T, d)
        # 4. centred logits at the last position of each future.
        xs = xf.view(P, B, pas.T, -1)[pas.pack_of, :, pas.ends - 1]  # (q, B, d)
        blk = head(xs, pas.futures)  # (q, B, k)
        out[rows_t[None, :], pas.futures[:, None]] = blk.to(model.dtype)
        if update is not None:
            update(B * len(pas.futures))


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bool mask → additive mask in ``dtype``: 0 where attention is allowed, −inf elsewhere (same shape).

    Eager attention *adds* the mask to the scores (a bool mask would add 0/1 and let every key
    through); SDPA accepts either, and a float mask spares it a conversion in every layer.
    """
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, float("-inf"))


def _packs_per_pass(packs, q0, F, B, A, max_positions) -> int:
    """How many packs (from ``q0``, longest first) share the next pass.

    A pass pads its packs to its first (longest) pack's length T and holds at most ``max_positions``
    new positions (P·B·T) and ``KEY_SLOTS`` × ``max_positions`` key slots (P·B·(A + T), the repeated
    history cache included); a pack shorter than 3/4 of T starts the next pass (bounded padding).
    """
    T = sum(len(F[j]) for j in packs[q0])
    most = max(1, min(max_positions // (B * T), KEY_SLOTS * max_positions // (B * (A + T))))
    P = 1
    while P < most and q0 + P < len(packs) and 4 * sum(len(F[j]) for j in packs[q0 + P]) >= 3 * T:
        P += 1
    return P


class _Pass:
    """P packs padded to the longest, T tokens: ids (P, T), step within each future (P, T), block-causal
    mask (P, T, T), and per future (q of them): its index in F (q,), its pack (q,), its last slot + 1 (q,)."""

    def __init__(self, packs, F, dev):
        self.T = T = sum(len(F[j]) for j in packs[0])
        ids, step, seg, futures, pack_of, ends = [], [], [], [], [], []
        for p, pack in enumerate(packs):
            row_ids, row_step, row_seg, at = [], [], [], 0
            for s, j in enumerate(pack):
                row_ids += F[j]
                row_step += range(len(F[j]))
                row_seg += [s] * len(F[j])
                at += len(F[j])
                futures.append(j)
                pack_of.append(p)
                ends.append(at)
            pad = T - at  # pad slots: token 0 at step 0, a segment of their own (-1), read by no future
            ids.append(row_ids + [0] * pad)
            step.append(row_step + [0] * pad)
            seg.append(row_seg + [-1] * pad)
        self.ids = torch.tensor(ids, dtype=torch.long, device=dev)  # (P, T)
        self.step = torch.tensor(step, dtype=torch.long, device=dev)  # (P, T)
        seg_t = torch.tensor(seg, dtype=torch.long, device=dev)  # (P, T)
        slot = torch.arange(T, device=dev)
        self.mask = (seg_t[:, None, :] == seg_t[:, :, None]) & (slot[None, :] <= slot[:, None])[None]  # (P, T, T)
        self.futures = torch.tensor(futures, dtype=torch.long, device=dev)  # (q,)
        self.pack_of = torch.tensor(pack_of, dtype=torch.long, device=dev)  # (q,)
        self.ends = torch.tensor(ends, dtype=torch.long, device=dev)  # (q,)


class _CentredHead:
    """The head at the needed columns, centred over the whole vocabulary (step 4).

    ``self(xs (q, B, d), futures (q,))`` → (q, B, k) logits [c, b, :] = xs[c, b]·(w_v − w̄) + (b_v − b̄)
    for v = columns[futures[c]] (all V when ``columns`` is None). Computed in float32 (float64 for
    float64 models); w̄ and b̄ are means over the V output rows only (padding rows of W are cut).
    """

    def __init__(self, model, columns):
        W, b = model._head()
        V = model.vocab_size
        self.dtype = torch.float64 if model.dtype == torch.float64 else torch.float32
        self.W = W[:V].to(device=model.device)  # (V, d), body dtype
        self.body_dtype = W.dtype
        self.w_mean = self.W.mean(0, dtype=self.dtype)  # (d,)
        self.b = None if b is None else b[:V].to(device=model.device, dtype=self.dtype)  # (V,)
        self.b_mean = None if b is None else self.b.mean()
        self.columns = columns  # (m, k) or None
        self.full = None
        if columns is None:  # every row is needed: centre W once
            self.full = self.W.to(self.dtype) - self.w_mean  # (V, d)

    def __call__(self, xs, futures):
        xs = xs.to(self.dtype)
        if self.columns is None:
            blk = xs @ self.full.T  # (q, B, V)
            return blk if self.b is None else blk + (self.b - self.b_mean)
        cols = self.columns.index_select(0, futures)  # (q, k)
        rows = self.W.index_select(0, cols.reshape(-1)).to(self.dtype) - self.w_mean  # (q·k, d)
        blk = torch.bmm(xs, rows.view(*cols.shape, -1).transpose(1, 2))  # (q, B, d) @ (q, d, k) → (q, B, k)
        return blk if self.b is None else blk + (self.b[cols] - self.b_mean)[:, None, :]
