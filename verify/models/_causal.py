"""Autoregressive networks as :class:`logitrank.synth.LanguageModel`, with prefix key/value caching.

A causal network scores every position of its input in one pass. :class:`CausalLM` turns that into
the logit-matrix primitive of paper A, Definition 2.2, without recomputing shared prefixes.

**Packed path** (default when the subclass implements ``_hidden`` and ``_head``; issue 14): the
futures ride behind their history in one pass under a block-causal mask and only the needed
mean-centred logits are formed — see :mod:`logitrank.verify.models._packed`. It keeps no cache.

**Cached path** (models without ``_hidden``; also :meth:`CausalLM.rollout` and
:meth:`CausalLM.continuation_logits`), using the keys and values a pass returns (its *cache*):

1. the histories, sorted by length, are *prefilled* once in batches, **left-padded** to the longest
   of the batch: pad keys are masked out of attention and each row's position ids start at 0 on
   its first real token, so a padded row computes exactly what it would alone;
2. a history's cache is copied across a batch of futures (``index_select`` on the batch axis);
3. futures of one exact length run on top of the copied caches in one pass (no future padding),
   with position ids continuing after each history's own length and the history's pad mask
   carried along; the logits at the last position are L_M[· | h ∘ f]; the empty future reads the
   prefill's last position (every row ends on a real token thanks to left padding).

A future of length L thus costs L positions instead of 1 + len(h) + L.

What is returned (decided here, used by :mod:`logitrank.algorithms`):

* :meth:`CausalLM.logit_block` — the (n, m, k) block of L_{M,k}(H, F): the logits after h ∘ f
  only, i.e. at the *final* position of each future (what Definition 2.2 asks for);
* :meth:`CausalLM.continuation_logits` — for one history and G continuations of one length L, the
  logits after h ∘ z_{1:j} for *every* j = 0 … L, (G, L + 1, V), from one pass (used to score
  LinGen's samples against the model, §3.3);
* :meth:`CausalLM.rollout` — LinGen's step 5 with every (history, generation) cache kept.

Every sequence starts with a start token (``bos_token_id``) so that the empty prefix, which paper A
uses for the top-k columns (§3.1, the logits after f alone), is defined. Logits are mean-centred
over the whole vocabulary (Definition 2.1) before any column is selected.

Subclasses implement one method, ``_run``; see :class:`CausalLM`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import defaultdict

import torch

from logitrank._tokens import as_token_list
from logitrank._validation import check_int, check_tokens
from logitrank.synth import LogitModel, center_logits

from ._packed import packed_logit_block

__all__ = ["CausalLM"]

#: Scratch memory a single forward pass may use (logits of every position dominate for large V).
DEFAULT_MEMORY_BUDGET = 2**28


class CausalLM(LogitModel):
    """A causal network with a key/value cache, seen as a :class:`logitrank.synth.LanguageModel` over Σ = {0 … V−1}.

    Subclasses set the attributes below and implement ``_run``.

    Attributes
    ----------
    vocab_size : int
        V: the model's output tokens (logits beyond V, e.g. padding rows of an embedding, are cut).
    horizon : None
        Unbounded (up to ``max_length`` tokens per sequence).
    bos_token_id : int or None
        Start token prepended to every sequence (it may lie outside [0, V), e.g. an input-only id).
        None: no start token; then the empty prefix is not allowed.
    max_length : int or None
        Most positions one sequence may use, start token included (the position table's size).
    device, dtype : torch.device, torch.dtype
        Where the network runs and the dtype of the returned logits.
    name : str
        A stable identifier (model and checkpoint) for results.
    memory_budget : int
        Bytes of scratch memory one forward pass may use.
    max_positions : int
        Most positions per forward pass (bigger passes are not faster on a CPU).
    """

    horizon = None
    bos_token_id: int | None
    max_length: int | None
    name: str
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    max_positions: int = 8192

    # -- what a subclass provides -----------------------------------------------------------------
    @abstractmethod
    def _run(self, ids: torch.Tensor, past, start: int, positions: torch.Tensor | None = None,
             key_mask: torch.Tensor | None = None):
        """One forward pass on top of an optional cache.

        Parameters
        ----------
        ids : (B, L) LongTensor
            Input ids on ``device``.
        past : list of (keys, values) or None
            The cache of B sequences that all hold ``start`` positions; batch axis 0 in every
            tensor. None when ``start`` is 0.
        start : int
            Number of cached positions.
        positions : (B, L) LongTensor, optional
            Position ids of ``ids``; default ``start + arange(L)`` for every row.
        key_mask : (B, start + L) bool tensor, optional
            False for pad positions no query may attend to; default all True.

        Returns
        -------
        logits : (B, L, V') tensor, V' >= V
        past : list of (keys, values)
            The cache extended by the L new positions.
        """

    # -- optional: the packed, head-sparse path (:mod:`logitrank.verify.models._packed`) ---------------
    #: Future tokens per pack (None: the longest future, at least ``_packed.DEFAULT_PACK_TOKENS``).
    pack_tokens: int | None = None

    def _hidden(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, past=None):
        """Final hidden states (after the last norm) of one pass, on top of an optional cache.

        Parameters
        ----------
        ids, positions : (B, L) LongTensor
        mask : (B, 1, L, P + L) float tensor in the body's dtype (that of ``_head()``'s W)
            Additive: 0 where query q may attend to key slot s (the P cached slots come first),
            −inf elsewhere; every query may attend to at least one slot. (Additive, not bool:
            eager attention adds the mask to the scores.)
        past : list of per-layer (keys, values) with P positions, or None (P = 0)
            As returned by a previous call; never modified.

        Returns
        -------
        x : (B, L, d) tensor; the logits are ``x @ W.T (+ b)`` with ``_head()``
        past : the cache extended by the L positions

        A subclass that implements this and ``_head`` gets the packed path in :meth:`logit_block`.
        """
        raise NotImplementedError

    def _head(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output layer as (W (V', d), b (V',) or None), logits = x Wᵀ + b."""
        raise NotImplementedError

    @property
    def packed(self) -> bool:
        """Whether :meth:`logit_block` uses the packed path (the subclass implements ``_hidden``)."""
        return type(self)._hidden is not CausalLM._hidden and getattr(self, "_packed_ok", True)

    # -- the LanguageModel protocol ---------------------------------------------------------------
    def _check_prefixes(self, prefixes, name: str = "prefixes") -> torch.Tensor:
        limit = None if self.max_length is None else self.max_length - self._n_start
        return check_tokens(
            name, prefixes, vocab_size=self.vocab_size, device=self.device, max_length=limit,
            max_length_reason=f" (max_length={self.max_length} positions, start token included)",
        )

    @property
    def _n_start(self) -> int:
        return 0 if self.bos_token_id is None else 1

    def _with_start(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, t) → (B, t + 1) with the start token in front (unchanged without one)."""
        if self.bos_token_id is None:
            if ids.shape[1] == 0:
                raise ValueError(
                    f"{type(self).__name__} has no start token (bos_token_id=None), so the empty prefix "
                    "has no next-token distribution; pass bos_token_id= or use prefixes of length >= 1"
                )
            return ids
        bos = torch.full((ids.shape[0], 1), self.bos_token_id, dtype=torch.long, device=ids.device)
        return torch.cat([bos, ids], dim=1)  # (B, t+1)

    @torch.no_grad()
    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        """(B, t) validated prefixes → (B, V) logits, each prefix run from scratch (no cache)."""
        ids = self._with_start(prefixes)  # (B, t')
        out = torch.empty(ids.shape[0], self.vocab_size, dtype=self.dtype, device=self.device)
        chunk = self._rows_per_pass(ids.shape[1])
        for s in range(0, ids.shape[0], chunk):
            logits, _ = self._run(ids[s : s + chunk], None, 0)  # (c, t', V')
            out[s : s + chunk] = logits[:, -1, : self.vocab_size].to(self.dtype)
        return out

    def _rows_per_pass(self, length: int) -> int:
        """Sequences of ``length`` positions per forward pass, under ``memory_budget`` and ``max_positions``."""
        per_row = 4 * length * (self.vocab_size + 16 * getattr(self, "width", 256))
        return max(1, min(self.memory_budget // max(1, per_row), self.max_positions // max(1, length)))

    # -- step 1: prefill ------------------------------------------------------------------------------
    def _prefills(self, H: list[tuple[int, ...]]):
        """Yield (rows, last, past, mask, lengths) per batch of histories sorted by length.

        rows : (r,) LongTensor of history ids; last : (r, V) centred logits after each history;
        past : the cache, A positions per row; mask : (r, A) bool, False on left pads;
        lengths : (r,) LongTensor of real positions per row (start token included).
        """
        order = sorted(range(len(H)), key=lambda i: len(H[i]))
        per = self._rows_per_pass(max(1, self._n_start + max(map(len, H))))
        for s in range(0, len(order), per):
            rows = order[s : s + per]
            A = max(len(H[i]) for i in rows) + self._n_start
            lengths = torch.tensor([len(H[i]) + self._n_start for i in rows], device=self.device)  # (r,)
            ids = torch.zeros(len(rows), A, dtype=torch.long, device=self.device)  # left-padded with 0
            for b, i in enumerate(rows):
                seq = self._with_start(torch.tensor([H[i]], dtype=torch.long, device=self.device).reshape(1, len(H[i])))[0]
                ids[b, A - len(seq):] = seq
            pads = A - lengths  # (r,)
            mask = torch.arange(A, device=self.device)[None, :] >= pads[:, None]  # (r, A)
            positions = (torch.arange(A, device=self.device)[None, :] - pads[:, None]).clamp_min(0)  # (r, A)
            logits, past = self._run(ids, None, 0, positions, mask)  # (r, A, V')
            last = center_logits(logits[:, -1, : self.vocab_size].to(self.dtype))  # (r, V)
            yield torch.tensor(rows, device=self.device), last, past, mask, lengths

    # -- the cached logit-matrix primitive ----------------------------------------------------------
    @torch.no_grad()
    def logit_block(self, histories, futures, columns: torch.Tensor | None = None, *, update=None) -> torch.Tensor:
        """L_{M,k}(H, F) as an (n, m, k) block, with each history's cache reused across all futures.

        This is the hook :func:`logitrank.algorithms.logit_matrix` dispatches to (``path="auto"`` or
        ``"block"``); the module docstring lists the steps.

        Parameters
        ----------
        histories : (n,) sequence of token sequences, or (n, t) LongTensor
        futures : (m,) sequence of token sequences, or (m, t') LongTensor
        columns : (m, k) LongTensor, optional
            Tokens kept per future; all V when None.
        update : callable(int), optional
            Called with the number of (h, f) cells finished (a progress bar's ``update``).

        Returns
        -------
        (n, m, k) tensor
            [i, j, c] = L_M[columns[j, c] | histories[i] ∘ futures[j]] (mean-centred over all V tokens).

        Examples
        --------
        >>> from logitrank.verify.models import TinyConfig, TinyLM
        >>> lm = TinyLM.untrained(TinyConfig(n_layer=1, n_embd=16, n_head=2, block_size=16), seed=0)
        >>> block = lm.logit_block([(1, 2), (3,)], [(), (4, 5, 6)])
        >>> block.shape
        torch.Size([2, 2, 256])
        >>> bool(torch.allclose(block[0, 1], lm.logits([[1, 2, 4, 5, 6]])[0], atol=1e-5))
        True
        """
        V = self.vocab_size
        H = as_token_list("histories", histories, V)
        F = as_token_list("futures", futures, V)
        if self.max_length is not None and H and F:
            longest = self._n_start + max(map(len, H)) + max(map(len, F))
            if longest > self.max_length:
                raise ValueError(
                    f"histories ∘ futures must fit max_length={self.max_length} positions (start token "
                    f"included); the longest history plus the longest future needs {longest}"
                )
        if columns is not None:
            if columns.ndim != 2 or columns.shape[0] != len(F):
                raise ValueError(f"columns must have shape (m, k) = ({len(F)}, k); got {tuple(columns.shape)}")
            columns = columns.to(self.device)
        if self.packed:
            return packed_logit_block(self, H, F, columns, update)
        k = V if columns is None else columns.shape[1]
        out = torch.empty(len(H), len(F), k, dtype=self.dtype, device=self.device)
        if not H or not F:
            return out
        by_length: dict[int, list[int]] = defaultdict(list)
        for j, f in enumerate(F):
            by_length[len(f)].append(j)
        for rows, last, past, mask, lengths in self._prefills(H):
            self._fill_block(out, rows, last, past, mask, lengths, F, by_length, columns, update)
        return out

    def _fill_block(self, out, rows, last, past, mask, lengths, F, by_length, columns, update) -> None:
        """Steps 2–3: write out[rows, j] for every future j, given the prefilled cache of ``rows``."""
        dev, R, A = self.device, len(rows), mask.shape[1]
        for b, fut in sorted(by_length.items()):
            fj_all = torch.tensor(fut, device=dev)  # (m_b,)
            if b == 0:  # the empty future: the history's own last position
                for j in fut:
                    out[rows, j] = last if columns is None else last[:, columns[j]]
                if update is not None:
                    update(R * len(fut))
                continue
            ids_b = torch.tensor([F[j] for j in fut], dtype=torch.long, device=dev)  # (m_b, b)
            cell_rows = torch.arange(R, device=dev).repeat_interleave(len(fut))  # (R*m_b,) history-major
            cell_futs = torch.arange(len(fut), device=dev).repeat(R)  # (R*m_b,)
            per_pass = self._rows_per_pass(b)
            steps = torch.arange(b, device=dev)
            for c0 in range(0, R * len(fut), per_pass):
                cr, cf = cell_rows[c0 : c0 + per_pass], cell_futs[c0 : c0 + per_pass]
                sub_past = [(k_.index_select(0, cr), v_.index_select(0, cr)) for k_, v_ in past]
                positions = lengths[cr, None] + steps[None, :]  # (c, b)
                key_mask = torch.cat([mask[cr], torch.ones(len(cr), b, dtype=torch.bool, device=dev)], 1)  # (c, A+b)
                logits, _ = self._run(ids_b[cf], sub_past, A, positions, key_mask)  # (c, b, V')
                block = center_logits(logits[:, -1, : self.vocab_size].to(self.dtype))  # (c, V)
                fj = fj_all[cf]  # (c,)
                if columns is not None:
                    block = block.gather(1, columns[fj])  # (c, k)
                out[rows[cr], fj] = block
                if update is not None:
                    update(len(cr))

    # -- LinGen's step 5 ------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, histories, n_streams: int, n_steps: int, choose) -> None:
        """Grow ``n_streams`` continuations z^(g) after every history at once, one token per step.

        For t = 0 … n_steps − 1 the callback gets L_t = L_M(H, {z^(g)_{1:t}}) for a batch of streams
        and returns their next tokens; each (history, stream) cell keeps its key/value cache, so a
        step costs one position per cell. This is LinGen's step 5 (:func:`logitrank.algorithms.lingen`).
        Streams are processed in batches that keep the cells' caches within ``memory_budget``.

        Parameters
        ----------
        histories : (n,) token sequences
        n_streams : int
            G.
        n_steps : int
            m.
        choose : callable(t, L, streams) -> (g,) LongTensor
            L is an (n, g, V) tensor of mean-centred logits after h_i ∘ z^(streams[j])_{1:t};
            ``streams`` is the (g,) LongTensor of stream ids in the batch.
        """
        V = self.vocab_size
        H = as_token_list("histories", histories, V)
        G = check_int("n_streams", n_streams, minimum=0)
        m = check_int("n_steps", n_steps, minimum=1)
        need = self._n_start + max(map(len, H), default=0) + m - 1
        if self.max_length is not None and need > self.max_length:
            raise ValueError(f"histories plus {m - 1} generated tokens need {need} positions; max_length={self.max_length}")
        if not H or G == 0:
            return
        groups = list(self._prefills(H))
        # bytes of one cell's cache at full length, and of one stream's logits over all histories
        itemsize = torch.empty(0, dtype=self.dtype).element_size()
        per_pos = max(sum(k_[0].numel() + v_[0].numel() for k_, v_ in past) / mask.shape[1] for _, _, past, mask, _ in groups)
        per_stream = len(H) * (per_pos * (need + 1) + 2 * V) * itemsize
        batch = max(1, int(self.memory_budget // per_stream))
        for s0 in range(0, G, batch):
            streams = torch.arange(s0, min(G, s0 + batch))
            g = len(streams)
            L = torch.empty(len(H), g, V, dtype=self.dtype, device=self.device)  # (n, g, V)
            cells: list = [None] * len(groups)
            z = None
            for t in range(m):
                for gi, (rows, last, past, mask, lengths) in enumerate(groups):
                    r, A = len(rows), mask.shape[1]
                    if t == 0:
                        L[rows] = last[:, None, :].expand(r, g, V)
                        continue
                    if cells[gi] is None:  # cell (i, j) = row i, stream j: row-major
                        cells[gi] = [(k_.repeat_interleave(g, 0), v_.repeat_interleave(g, 0)) for k_, v_ in past]
                    ids = z.to(self.device).repeat(r)[:, None]  # (r*g, 1)
                    positions = (lengths + t - 1).repeat_interleave(g)[:, None]  # (r*g, 1)
                    key_mask = torch.cat([mask.repeat_interleave(g, 0),
                                          torch.ones(r * g, t, dtype=torch.bool, device=self.device)], 1)  # (r*g, A+t)
                    logits, cells[gi] = self._run(ids, cells[gi], A + t - 1, positions, key_mask)  # (r*g, 1, V')
                    L[rows] = center_logits(logits[:, -1, :V].to(self.dtype)).reshape(r, g, V)
                z = choose(t, L, streams)

    # -- every prefix of a continuation ---------------------------------------------------------------
    @torch.no_grad()
    def continuation_logits(self, history, continuations) -> torch.Tensor:
        """Logits after h ∘ z_{1:j} for every j = 0 … L, for G continuations of one length, in one pass.

        Parameters
        ----------
        history : sequence of token ids
            h (any length, possibly empty).
        continuations : (G, L) LongTensor
            z; all of one length L >= 0.

        Returns
        -------
        (G, L + 1, V) tensor
            [g, j] = L_M[· | h ∘ z^(g)_{1:j}] (mean-centred).

        Examples
        --------
        >>> from logitrank.verify.models import TinyConfig, TinyLM
        >>> lm = TinyLM.untrained(TinyConfig(n_layer=1, n_embd=16, n_head=2, block_size=16), seed=0)
        >>> z = torch.tensor([[7, 8, 9]])
        >>> out = lm.continuation_logits([1, 2], z)
        >>> out.shape, bool(torch.allclose(out[0, 2], lm.logits([[1, 2, 7, 8]])[0], atol=1e-5))
        (torch.Size([1, 4, 256]), True)
        """
        (h,) = as_token_list("history", [history], self.vocab_size)
        z = check_tokens("continuations", continuations, vocab_size=self.vocab_size, device=self.device)
        G, L = z.shape
        if self.max_length is not None and self._n_start + len(h) + L > self.max_length:
            raise ValueError(
                f"history ∘ continuations need {self._n_start + len(h) + L} positions; max_length={self.max_length}"
            )
        ids = self._with_start(torch.tensor([h], dtype=torch.long, device=self.device).reshape(1, len(h)))
        logits, past = self._run(ids, None, 0)  # (1, a', V')
        first = center_logits(logits[:, -1, : self.vocab_size].to(self.dtype))  # (1, V)
        out = torch.empty(G, L + 1, self.vocab_size, dtype=self.dtype, device=self.device)
        out[:, 0] = first
        if L:
            chunk = self._rows_per_pass(L)
            for s in range(0, G, chunk):
                g = min(chunk, G - s)
                sub_past = [(k_.expand(g, *k_.shape[1:]), v_.expand(g, *v_.shape[1:])) for k_, v_ in past]
                logits, _ = self._run(z[s : s + g], sub_past, ids.shape[1])  # (g, L, V')
                out[s : s + g, 1:] = center_logits(logits[..., : self.vocab_size].to(self.dtype))
        return out
