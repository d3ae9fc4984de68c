"""The batched ISAN recurrence x_s = A[s−1, z_s] x_{s−1} for many known prefixes at once (issue 14).

Every step multiplies each prefix's state by the matrix of its own token. Grouping the prefixes by
token turns that into a few batched matmuls, each matrix read once for its whole group. Because
the tokens of every step are known in advance (the (B, t) prefix matrix), the whole plan is made
once per call, before any floating-point work:

1. Sort every column of the prefix matrix at once; a row's *rank* is its position among the rows
   with the same token at that step.
2. Lay each step's rows out in slots. Level 0 is a full (V, m₀, d) block multiplied by A[s] itself
   (no copy; groups smaller than m₀ padded), m₀ chosen per step by a cost model of the work
   (:func:`_level0_sizes`). The rows left over (each group's rank ≥ m₀) go into *buckets*: tokens
   whose leftover counts lie within a factor 1 + ``PAD_TOLERANCE`` of each other, each bucket one
   batched matmul padded to its largest count, with its tokens' matrices gathered.
3. One index per step maps the previous step's slots to this step's (one gather per step), and one
   more maps the last step's slots back to the prefixes' order.

The first step needs no matmul per prefix: its V possible states A[0, z] x₀ are computed once and
gathered. Padding slots read slot 0 of the previous step: rows of a matmul are independent, and
padding rows are never read back into a real slot.

The plan replaces the per-step sort / pad-to-largest-group strategy of
:meth:`logitrank.synth.TimeVaryingISAN._step` (still used for sampling, where tokens are not known
ahead, and kept callable as ``method="stepwise"`` for comparison); both form the same products and
agree to float rounding (BLAS may order each length-d sum differently; tests/synth/test_isan_kernel.py).

Measured (benchmarks/bench_isan_logits.py, B = 16384, t = 32, d = 64, V = 256, one thread, load 0.7):
0.33 / 0.35 of the 2048² matmul peak (fp32 / fp64) against 0.12 / 0.15 for the stepwise route. The
reachable ceiling of any grouped design here — equal groups, each step its own matrices, one row
gather per step, no bookkeeping — is 0.46 / 0.54: the kernel runs at 0.72 / 0.65 of it. The rest
is the plan (~7 ms: numpy on int32), padding and leftover buckets (~20%) and the readout.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = ["PAD_TOLERANCE", "grouped_states"]

#: A bucket of leftover rows may hold at most this fraction of padding slots beyond its rows.
PAD_TOLERANCE = 0.15


#: Cost of gathering one token's (d, d) matrix for a bucket, and of one extra ``bmm`` call, in
#: units of one slot's work (a d-row gather plus 2·d² FLOPs); CPU measurements at d = 64, V = 256.
GATHER_COST, CALL_COST = 24.0, 60.0


def _level0_sizes(counts: np.ndarray, tolerance: float) -> np.ndarray:
    """m₀ per step minimising the estimated work: V·m₀ level-0 slots (smaller groups padded), the
    leftover rows in buckets (≈ 1 + tolerance/2 slots each), the gathers of their matrices and the
    calls. counts (t, V) → (t,). Every step's counts are candidates; with the counts sorted, the
    leftover of candidate rank r is a suffix sum, so all candidates cost O(t·V)."""
    _t, V = counts.shape
    srt = np.sort(counts, axis=1)  # (t, V) ascending: candidate m₀ = srt[:, r]
    suffix = np.cumsum(srt[:, ::-1], axis=1)[:, ::-1]  # (t, V): Σ_{j >= r} srt[j]
    r = np.arange(V)
    n_above = V - 1 - r  # tokens after rank r (ties leave 0 rows: a slight overestimate of gathers)
    left_rows = suffix - srt * (V - r)  # (t, V): Σ_{j >= r} (srt[j] − srt[r])
    calls = np.log1p(srt[:, -1:] - srt) / np.log1p(tolerance) + (srt > 0)  # rough bucket count
    cost = V * srt + (1 + tolerance / 2) * left_rows + GATHER_COST * n_above + CALL_COST * calls
    return np.take_along_axis(srt, cost.argmin(1)[:, None], 1)[:, 0]  # (t,)


def _bucket_tables(left: np.ndarray, tolerance: float):
    """Buckets of leftover rows for every step at once. left (t, V) → (t, V) tables, in the order of
    decreasing leftover: the tokens (``by_left``), whether they have rows (``live``), whether a
    bucket starts there (``is_start``) and the rows per token of their bucket (``m_tok``).

    A bucket holds the tokens whose leftover counts share one class ⌊log_{1+tolerance} c⌋, so its
    largest count is below (1 + tolerance) × its smallest: padding to the largest wastes less than
    ``tolerance`` of the rows.
    """
    t, V = left.shape
    by_left = np.argsort(-left, axis=1, kind="stable")  # (t, V)
    L = np.take_along_axis(left, by_left, 1)  # (t, V), decreasing
    live = L > 0
    cls = np.where(live, np.floor(np.log(np.maximum(L, 1)) / np.log1p(tolerance)), -1)  # (t, V)
    is_start = live & np.concatenate([np.ones((t, 1), bool), cls[:, 1:] != cls[:, :-1]], 1)
    start = np.maximum.accumulate(np.where(is_start, np.arange(V), 0), axis=1)  # (t, V)
    m_tok = np.where(live, np.take_along_axis(L, start, 1), 0)  # (t, V)
    return by_left, live, is_start, m_tok


def _buckets_of(left: np.ndarray, tolerance: float) -> list[tuple[np.ndarray, int]]:
    """The buckets of one step as [(tokens, rows per token)] (for tests and reading)."""
    by_left, live, is_start, m_tok = (a[0] for a in _bucket_tables(left[None, :], tolerance))
    starts = np.flatnonzero(is_start).tolist() + [int(live.sum())]
    return [(by_left[a:b], int(m_tok[a])) for a, b in itertools.pairwise(starts)]


def _sort_columns(keys: np.ndarray, V: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable argsort of every step's tokens and the group sizes: keys (t, B) → row order (t, B), counts (t, V).

    numpy's stable argsort of 8- or 16-bit keys is a radix sort, ~20× faster here than ``torch.sort``
    (a comparison sort); wider keys fall back to numpy's merge sort.
    """
    t = keys.shape[0]
    order = np.argsort(keys, axis=1, kind="stable")  # (t, B)
    counts = [np.bincount(row, minlength=V) for row in keys]  # per step: 3× faster than one flat bincount
    return order, np.stack(counts).astype(np.int64) if t else np.zeros((0, V), np.int64)


def _index_dtype(n: int) -> np.dtype:
    """int32 indices while they fit (half the memory traffic of int64 in the plan and the gathers)."""
    return np.dtype(np.int32) if n < 2**31 else np.dtype(np.int64)


class _Plan:
    """Slots, buckets and gather indices of one (B, t) prefix matrix (module docstring, steps 1–3).

    Attributes: ``sizes[s]`` slots at step s; ``calls[s]`` the batched matmuls of step s as
    (first slot, tokens or None for all V, number of tokens, rows per token); ``slot`` (t, B) each
    prefix's slot at each step; ``src[s−1]`` (sizes[s],) the slot of step s−1 each slot reads.
    Index tensors are int32 while they fit (``torch.index_select`` takes either).

    The plan is integer bookkeeping on (t, B) arrays, made with numpy on the CPU whatever the
    device (a few ms at B = 16384, t = 32); its index tensors then move to the prefixes' device once.
    """

    def __init__(self, prefixes: torch.Tensor, V: int, tolerance: float):
        B, t = prefixes.shape
        dev = prefixes.device
        key_dtype = np.uint8 if V <= 2**8 else np.uint16 if V <= 2**16 else np.int64
        keys = np.ascontiguousarray(prefixes.cpu().numpy().astype(key_dtype).T)  # (t, B); cast first: 10× faster
        # 1. Group sizes, and every step's rows in token order (stable: by rank within the group).
        order, counts = _sort_columns(keys, V)  # (t, B), (t, V)
        # 2. Level 0 (V·m₀ slots) and buckets of leftover rows, per step; tables are (t, V).
        m0 = _level0_sizes(counts, tolerance)  # (t,)
        m0[0] = 0
        left = np.clip(counts - m0[:, None], 0, None)  # (t, V)
        by_left, live, is_start, m_tok = _bucket_tables(left, tolerance)
        first = V * m0[:, None] + np.cumsum(m_tok, 1) - m_tok  # (t, V): first slot of each token
        sizes = V * m0 + m_tok.sum(1)
        sizes[0] = V
        self.sizes = sizes.tolist()
        base = np.zeros((t, V), dtype=np.int64)
        np.put_along_axis(base, by_left, first, 1)  # (t, V) by token id
        by_left_t = torch.from_numpy(by_left).to(dev)
        self.calls: list[list[tuple[int, torch.Tensor | None, int, int]]] = [[]]
        for s in range(1, t):
            calls = [(0, None, V, int(m0[s]))] if m0[s] > 0 else []
            starts = np.flatnonzero(is_start[s]).tolist() + [int(live[s].sum())]
            for a, b in itertools.pairwise(starts):
                calls.append((int(first[s, a]), by_left_t[s, a:b], b - a, int(m_tok[s, a])))
            self.calls.append(calls)
        # 3. Each row's slot. In token order step s's rows form, per token v, a run of min(c, m₀)
        #    level-0 rows (slots v·m₀ + rank) then its leftover rows (slots base[v] + rank − m₀):
        #    slot = position + a constant per run.
        idt = _index_dtype(max(int(sizes.max()), B) + 1)
        tstarts = np.cumsum(counts, 1) - counts  # (t, V): first position of each token
        n0 = np.minimum(counts, m0[:, None])  # (t, V)
        off = np.stack([np.arange(V) * m0[:, None] - tstarts, base - m0[:, None] - tstarts], 2)  # (t, V, 2)
        lens = np.stack([n0, counts - n0], 2)  # (t, V, 2)
        slot_sorted = np.repeat(off.reshape(-1).astype(idt), lens.reshape(-1)).reshape(t, B)
        slot_sorted += np.arange(B, dtype=idt)  # (t, B), token order
        slot = np.empty((t, B), dtype=idt)  # (t, B), row order
        for s in range(t):
            slot[s, order[s]] = slot_sorted[s]
        slot[0] = keys[0]  # step 0 reads the table of V first states
        # 4. Gather indices: each slot of step s reads its row's slot at step s−1 (padding: slot 0).
        bounds = np.concatenate([[0], np.cumsum(sizes[1:])])  # steps 1 … t−1
        src = np.zeros(max(int(bounds[-1]), 1), dtype=idt)
        for s in range(1, t):
            src[bounds[s - 1] + slot_sorted[s]] = slot[s - 1][order[s]]
        src_t = torch.from_numpy(src).to(dev)
        self.slot = torch.from_numpy(slot).to(dev)
        self.src = [src_t[int(bounds[s - 1]) : int(bounds[s])] for s in range(1, t)]


def transposed_transitions(model) -> torch.Tensor:
    """A[s, v]ᵀ for every step and token, contiguous: (T, V, d, d), cached on the model.

    ``bmm`` with a transposed view measured ~1.6× slower than with a contiguous operand; a
    time-invariant ISAN (A broadcast over steps) keeps one copy of its (V, d, d) matrices.
    """
    A = model.A
    cached = getattr(model, "_A_T", None)
    if cached is not None and cached[0] is A:
        return cached[1]
    if A.stride(0) == 0:
        A_T = A[0].transpose(1, 2).contiguous().unsqueeze(0).expand_as(A)
    else:
        A_T = A.transpose(2, 3).contiguous()
    model._A_T = (A, A_T)
    return A_T


def grouped_states(model, prefixes: torch.Tensor, *, keep_all: bool = False,
                   tolerance: float = PAD_TOLERANCE) -> torch.Tensor:
    """States after validated (B, t) prefixes of a time-varying ISAN, by the plan of the module docstring.

    Returns x_t, (B, d), or with ``keep_all`` the trajectory x_0 … x_t, (B, t + 1, d).
    """
    B, t = prefixes.shape
    x0 = model.x0
    d = x0.shape[0]
    if t == 0 or B == 0:
        x = x0.expand(B, d)
        return x.unsqueeze(1).clone() if keep_all else x.clone()
    plan = _Plan(prefixes, model.vocab_size, tolerance)
    A_T = transposed_transitions(model)
    first = model.A[0] @ x0  # (V, d): every possible state after step 1
    traj = [x0.expand(B, d), first.index_select(0, plan.slot[0])] if keep_all else None
    # three buffers reused across steps (fresh allocations page-fault on every step)
    size = max(plan.sizes[1:], default=0)
    x_in, cur, nxt = (x0.new_empty(size, d) for _ in range(3))
    mats_buf = x0.new_empty(model.vocab_size, d, d)  # bucket matrices, gathered in place
    prev = first
    for s in range(1, t):
        S = plan.sizes[s]
        torch.index_select(prev, 0, plan.src[s - 1], out=x_in[:S])  # (S_s, d): one gather per step
        for offset, toks, n_tok, m in plan.calls[s]:
            rows = slice(offset, offset + n_tok * m)
            if toks is None:
                mats = A_T[s]  # (V, d, d)
            else:
                mats = torch.index_select(A_T[s], 0, toks, out=mats_buf[:n_tok])  # (n_tok, d, d)
            torch.bmm(x_in[rows].view(n_tok, m, d), mats, out=nxt[rows].view(n_tok, m, d))  # x @ A[s, v]ᵀ
        prev = nxt[:S]
        cur, nxt = nxt, cur
        if keep_all:
            traj.append(prev.index_select(0, plan.slot[s]))
    if keep_all:
        return torch.stack(traj, dim=1)  # (B, t+1, d)
    return prev.index_select(0, plan.slot[t - 1])  # (B, d)
