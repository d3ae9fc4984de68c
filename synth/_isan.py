"""Time-varying Input Switched Affine Networks (paper A, Definition 4.2 and Fact C.2).

A time-varying ISAN of horizon T and hidden dimension d is given by A (T, V, d, d), B (T, V, d)
and x0 (d,). Step s = 1..T (array index s−1) draws

    z_s ~ softmax(B[s−1] @ x_{s−1}),    then    x_s = A[s−1, z_s] @ x_{s−1}.

The matrices A[T−1, ·] update the state after the last token and never affect the distribution;
they are kept so that every step has the same form.
"""

from __future__ import annotations

import itertools

import torch

from logitrank._validation import (
    as_generator,
    check_device,
    check_enumeration,
    check_int,
    check_memory,
    check_real,
    check_tensor,
    check_tokens,
    resolve_dtype,
)

from ._protocol import LogitModel, _draw

__all__ = ["ISAN", "MAX_ENUMERATION", "TimeVaryingISAN", "all_sequences", "random_isan"]

#: Prefixes per call of the grouped state kernel on the CPU (16× that on a GPU): its buffers
#: (3 × ~1.1·chunk·d numbers) then stay within a few MiB while each token's group stays large (issue 14).
STATE_CHUNK = 2**14

#: Largest V**T that :meth:`TimeVaryingISAN.distribution` enumerates by default (2**20 sequences).
MAX_ENUMERATION = 2**20


def _finite(values: torch.Tensor, what: str, dtype: torch.dtype) -> torch.Tensor:
    """``values`` unchanged, or FloatingPointError when the recurrence overflowed the dtype."""
    if not bool(torch.isfinite(values).all()):
        raise FloatingPointError(
            f"the ISAN's {what} are not finite: its hidden states overflowed {dtype} (largest finite "
            f"{torch.finfo(dtype).max:.3g}) — the transitions A grow the state faster than the dtype can "
            "hold; use dtype=torch.float64 or rescale A"
        )
    return values


class TimeVaryingISAN(LogitModel):
    """A time-varying ISAN (paper A, Definition 4.2), batched over prefixes, on any device/dtype.

    Parameters
    ----------
    A : (T, V, d, d) tensor
        Transition matrices; ``A[s-1, z]`` maps x_{s−1} to x_s after token z at step s.
    B : (T, V, d) tensor
        Readout matrices; the scores of step s are ``B[s-1] @ x_{s-1}``.
    x0 : (d,) tensor
        Initial hidden state.
    dtype : torch dtype, optional
        Cast all three to this dtype. When omitted they must already share one floating dtype.

    The device is that of ``A``; ``B`` and ``x0`` must be on it too.

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 4, 2, generator=0)
    >>> m.logits(torch.tensor([[0, 2]])).sum().abs() < 1e-12      # mean-centred
    tensor(True)
    >>> p = m.distribution()                                          # (3**4,) exact
    >>> bool(abs(p.sum() - 1) < 1e-12)
    True
    """

    def __init__(self, A: torch.Tensor, B: torch.Tensor, x0: torch.Tensor, *, dtype=None):
        dims: dict[str, int] = {}
        device = A.device if isinstance(A, torch.Tensor) else None
        A = check_tensor("A", A, shape=("T", "V", "d", "d"), dims=dims)
        B = check_tensor("B", B, shape=("T", "V", "d"), dims=dims, device=device)
        x0 = check_tensor("x0", x0, shape=("d",), dims=dims, device=device)
        if dtype is None:
            if not (A.dtype == B.dtype == x0.dtype):
                raise TypeError(
                    f"A, B and x0 must share one dtype; got {A.dtype}, {B.dtype}, {x0.dtype}. "
                    "Pass dtype=torch.float64 (say) to cast them all."
                )
        else:
            dtype = resolve_dtype("dtype", dtype)
            A, B, x0 = A.to(dtype), B.to(dtype), x0.to(dtype)
        if dims["T"] < 1 or dims["V"] < 2 or dims["d"] < 1:
            raise ValueError(
                f"need horizon T >= 1, vocabulary V >= 2 and hidden dim d >= 1; got "
                f"T={dims['T']}, V={dims['V']}, d={dims['d']}"
            )
        self.A, self.B, self.x0 = A, B, x0
        self.vocab_size = dims["V"]
        self.horizon = dims["T"]
        self.device = A.device
        self.dtype = A.dtype

    # -- structure -----------------------------------------------------------------------------
    @property
    def hidden_dim(self) -> int:
        """d, the size of the hidden state."""
        return self.x0.shape[0]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, horizon={self.horizon}, "
            f"hidden_dim={self.hidden_dim}, dtype={self.dtype}, device={self.device})"
        )

    def to(self, device=None, dtype=None) -> TimeVaryingISAN:
        """A copy on another device and/or dtype."""
        dtype = self.dtype if dtype is None else resolve_dtype("dtype", dtype)
        kw = {"device": check_device("device", device), "dtype": dtype}
        return TimeVaryingISAN(self.A.to(**kw), self.B.to(**kw), self.x0.to(**kw))

    # -- the recurrence ------------------------------------------------------------------------
    def _step(self, x: torch.Tensor, tokens: torch.Tensor, s: int) -> torch.Tensor:
        """x_{s+1} = A[s, z] x_s for a batch: x (B, d), tokens (B,) → (B, d).

        Four exact strategies, chosen by shape (benchmarks/bench_isan_logits.py measures them):

        * *grouped* (the common case): sort the batch by token, lay each token's rows out in a
          (V, m, d) buffer padded to the largest group m, and run one batched matmul with A[s]
          (V, d, d). Each matrix is read once and reused across its group, so this runs at
          matmul speed. Padding slots are left uninitialised: rows of a matmul are independent and
          those rows are never read back.
        * *all candidates* (tiny V·d <= 32, e.g. binary tokens): apply every A[s, v] to every row in
          one (B, d) × (d, V·d) matmul and keep the row's own token — V× the FLOPs but no sorting;
          measured 1.5–6× faster than grouping at V·d <= 32 and slower beyond.
        * *gathered* (batches smaller than V): copy each row's own matrix and multiply row by row.
        * *per token* (very uneven groups, where padding would waste more than 4× the work): one
          dense matmul per token present.
        """
        n, d = x.shape
        if n == 0:
            return x
        V = self.vocab_size
        A_s = self.A[s]  # (V, d, d)
        if V * d <= 32:
            every = x @ A_s.permute(2, 0, 1).reshape(d, V * d)  # (B, V*d): block v is x @ A[s, v]^T
            every = every.view(n, V, d)  # (B, V, d)
            return every.gather(1, tokens.view(n, 1, 1).expand(n, 1, d)).squeeze(1)  # (B, d)
        if n < V:
            A_sel = A_s.index_select(0, tokens)  # (B, d, d)
            return torch.bmm(A_sel, x.unsqueeze(-1)).squeeze(-1)  # (B, d)
        counts = torch.bincount(tokens, minlength=V)  # (V,)
        m = int(counts.max())
        if V * m > 4 * n:
            out = torch.empty_like(x)
            for v in torch.nonzero(counts).flatten().tolist():
                idx = torch.nonzero(tokens == v).flatten()
                out[idx] = x[idx] @ A_s[v].T  # (n_v, d)
            return out
        order = torch.argsort(tokens, stable=True)  # (B,) rows grouped by token
        sorted_tokens = tokens[order]  # (B,)
        starts = torch.cumsum(counts, 0) - counts  # (V,) first row of each group
        slot = torch.arange(n, device=x.device) - starts[sorted_tokens]  # (B,) position in group
        where = torch.empty_like(tokens)
        where[order] = sorted_tokens * m + slot  # (B,) each row's slot in the (V*m, d) buffer
        grouped = x.new_empty(V * m, d).index_copy_(0, where, x)  # (V*m, d)
        moved = torch.bmm(grouped.view(V, m, d), A_s.transpose(1, 2))  # (V, m, d): x @ A[s, v]^T
        out = moved.view(V * m, d).index_select(0, where)  # (B, d)
        return out  # (B, d)

    def _final_states(self, prefixes: torch.Tensor, *, method: str = "auto", keep_all: bool = False) -> torch.Tensor:
        """(B, t) validated tokens → x_t, (B, d), or the trajectory (B, t + 1, d) with ``keep_all``.

        ``method``: "grouped" plans every step's grouping once from the token matrix
        (``synth/_isan_kernel.py``, issue 14), in chunks of ``STATE_CHUNK`` prefixes; "stepwise"
        regroups at each step through :meth:`_step` (the path before issue 14, kept for comparison);
        "auto" takes "grouped" unless V·d <= 32 (the all-candidates step is faster there) or the batch
        is smaller than V. Both are exact and agree to float rounding.
        """
        B, t = prefixes.shape
        if method == "auto":
            method = "stepwise" if self.vocab_size * self.hidden_dim <= 32 or B < self.vocab_size else "grouped"
        if method == "grouped":
            from ._isan_kernel import grouped_states

            chunk = STATE_CHUNK if self.device.type == "cpu" else 16 * STATE_CHUNK  # GPUs want big launches
            parts = [grouped_states(self, prefixes[i : i + chunk], keep_all=keep_all) for i in range(0, B, chunk)]
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        if method != "stepwise":
            raise ValueError(f"method must be 'auto', 'grouped' or 'stepwise'; got {method!r}")
        x = self.x0.expand(B, -1)  # (B, d)
        out = [x]
        for s in range(t):
            x = self._step(x, prefixes[:, s], s)
            out.append(x)
        return torch.stack(out, dim=1) if keep_all else x  # (B, t+1, d) or (B, d)

    def states(self, prefixes) -> torch.Tensor:
        """The hidden-state trajectory x_0, …, x_t of each prefix.

        Parameters
        ----------
        prefixes : (B, t) LongTensor, t <= T

        Returns
        -------
        (B, t + 1, d) tensor
        """
        p = check_tokens(
            "prefixes", prefixes, vocab_size=self.vocab_size, device=self.device,
            max_length=self.horizon, max_length_reason=" (the horizon)",
        )
        return self._final_states(p, keep_all=True)  # (B, t+1, d)

    def logits(self, prefixes) -> torch.Tensor:
        """Mean-centred next-token logits: (B, t) LongTensor → (B, V) (Definition 2.1).

        Same values as the base class's ``center_logits(_raw_logits(...))``; the overflow check reads
        only the (B,) row means (a row mean is finite exactly when the whole row is and its sum did not
        overflow) and the centring is done in place — a (B, V) result is memory-bound (issue 14).
        """
        p = self._check_prefixes(prefixes)
        scores = self._final_states(p) @ self.B[p.shape[1]].T  # (B, V)
        mean = scores.mean(dim=-1, keepdim=True)  # (B, 1)
        _finite(mean, "next-token scores", self.dtype)
        return scores.sub_(mean)

    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        x = self._final_states(prefixes)  # (B, d)
        return _finite(x @ self.B[prefixes.shape[1]].T, "next-token scores", self.dtype)  # (B, V)

    def sample(self, n: int, *, generator, length: int | None = None) -> torch.Tensor:
        """n sequences drawn by running the recurrence once: → (n, length) LongTensor.

        ``generator`` is a torch.Generator on the model's device or an int seed; the same
        generator state gives the same samples.
        """
        n = check_int("n", n, minimum=0)
        length = self._check_length(length)
        gen = as_generator(generator, self.device)
        itemsize = torch.empty(0, dtype=self.dtype).element_size()
        per_row = 8 * length + itemsize * (4 * self.hidden_dim + 3 * self.vocab_size)  # tokens, states, probabilities
        check_memory(f"sample(n={n}) (the ({n}, {length}) tokens and the working states)", n * per_row, self.device,
                     "draw the sequences in several calls of smaller n sharing one generator")
        out = torch.empty(n, length, dtype=torch.long, device=self.device)
        x = self.x0.expand(n, -1)  # (n, d)
        for s in range(length):
            probs = torch.softmax(_finite(x @ self.B[s].T, "next-token scores", self.dtype), dim=-1)  # (n, V)
            out[:, s] = _draw(probs, gen)
            x = self._step(x, out[:, s], s)
        return out

    def log_prob(self, sequences) -> torch.Tensor:
        """log Pr[y_{1:t}] in one pass of the recurrence: (n, t) LongTensor → (n,)."""
        seq = self._check_sequences(sequences)
        x = self.x0.expand(seq.shape[0], -1)  # (n, d)
        total = torch.zeros(seq.shape[0], dtype=self.dtype, device=self.device)
        for s in range(seq.shape[1]):
            lp = torch.log_softmax(x @ self.B[s].T, dim=-1)  # (n, V)
            total = total + lp.gather(1, seq[:, s : s + 1]).squeeze(1)
            x = self._step(x, seq[:, s], s)
        return _finite(total, "log-probabilities", self.dtype)

    def distribution(self, *, max_sequences: int = MAX_ENUMERATION) -> torch.Tensor:
        """Exact probabilities of all V**T sequences, in lexicographic order (see :func:`all_sequences`).

        Computed level by level over the prefix tree (V**(s+1)·d² work at level s), so it is exact
        up to float rounding. Refuses when V**T > ``max_sequences`` (default 2**20).

        Returns
        -------
        (V**T,) tensor of probabilities summing to 1.
        """
        V, T = self.vocab_size, self.horizon
        # refused before anything is allocated: too many sequences, or more memory than the device has
        check_enumeration("distribution()", V, T, max_sequences,
                          bytes_per_sequence=(3 + self.hidden_dim) * self.B.element_size(), device=self.device,
                          way_out="use sampling (logitrank.verify.tv_monte_carlo)")
        x = self.x0.unsqueeze(0)  # (1, d): one node per prefix
        logp = torch.zeros(1, dtype=self.dtype, device=self.device)
        for s in range(T):
            lp = torch.log_softmax(x @ self.B[s].T, dim=-1)  # (N, V)
            logp = (logp.unsqueeze(1) + lp).reshape(-1)  # (N*V,)
            if s + 1 < T:
                x = torch.einsum("vij,nj->nvi", self.A[s], x).reshape(-1, self.hidden_dim)  # (N*V, d)
        return _finite(logp, "log-probabilities", self.dtype).exp()

    def logit_block(self, histories, futures, columns=None, *, update=None, memory_budget: int = 2**28):
        """L(H, F) by the factorised path (states once per history, one map per future and length).

        Parameters
        ----------
        histories : list of token tuples, or (n, t) LongTensor of one length
        futures : list of token tuples (both validated by the caller, e.g. ``logitrank.algorithms.logit_matrix``)
        columns : (m, k) LongTensor or None
            Tokens kept per future (None: all V).
        update : callable(int) or None
            Progress callback, given the number of cells done.

        Returns
        -------
        (n, m, k) tensor, or None when either list is empty. Agrees with ``logits`` on every h ∘ f
        to float rounding (~1e-15 in float64), not bit for bit.
        """
        from ._isan_block import isan_logit_block

        H = histories if isinstance(histories, torch.Tensor) else list(histories)
        return isan_logit_block(self, H, list(futures), columns, memory_budget,
                                update if update is not None else (lambda n: None))

    def logit_blocks(self, histories, futures, columns=None, *, futures_per_block: int, stops=(), reuse: bool = False):
        """Consecutive column blocks of L(H, F), the history states computed once for all blocks.

        Parameters
        ----------
        histories, futures, columns :
            As for :meth:`logit_block` (validated by the caller, e.g. ``logitrank.algorithms.gram_matrix``).
        futures_per_block : int
            Futures per block (c).
        stops : iterable of int
            Block ends also fall on these future counts.
        reuse : bool
            Write every block into one buffer: each yielded tensor is overwritten by the next (for
            consumers that fold each block in before asking for the next, like the Gram sum).

        Yields
        ------
        (end, (n, c·k) tensor)
            The block of futures ``[start, end)``, future-major like ``logit_matrix``.
        """
        from ._isan_block import isan_future_blocks

        H = histories if isinstance(histories, torch.Tensor) else list(histories)
        c = check_int("futures_per_block", futures_per_block, minimum=1)
        yield from isan_future_blocks(self, H, list(futures), columns, c, stops, bool(reuse))

    def gram_factors(self, histories, futures, columns=None, *, futures_per_block: int = 64):
        """X̃ (n, ℓ·d) and M (ℓ·d, ℓ·d), float64, with L(H, F) L(H, F)ᵀ = X̃ M X̃ᵀ (ℓ history lengths).

        The ISAN's logit matrix factors as states × maps (Fact C.4), so its Gram matrix needs only
        the (ℓ·d)² sums of map products over futures — O(m·k·(ℓd)²) work, never the O(n²·m·k) of
        summing blocks. Arguments as for :meth:`logit_blocks` (validated by the caller, e.g.
        ``logitrank.algorithms.gram_matrix(method="factorised")``).
        """
        from ._isan_block import isan_gram_factors

        H = histories if isinstance(histories, torch.Tensor) else list(histories)
        c = check_int("futures_per_block", futures_per_block, minimum=1)
        return isan_gram_factors(self, H, list(futures), columns, c)

    # -- Fact C.2 ------------------------------------------------------------------------------
    def to_time_invariant(self) -> ISAN:
        """The equivalent time-invariant ISAN of hidden dim T·d (paper A, Fact C.2).

        The state holds T blocks of size d; x_{s} lives in block s, each token's matrix moves block
        s to block s+1 through A[s, z], and the readout concatenates B[0], …, B[T−1] so that only
        the occupied block is read.
        """
        T, V, d = self.horizon, self.vocab_size, self.hidden_dim
        A_big = torch.zeros(V, T * d, T * d, dtype=self.dtype, device=self.device)
        for s in range(T - 1):
            # block row s+1, block column s holds A[s, z]
            A_big[:, (s + 1) * d : (s + 2) * d, s * d : (s + 1) * d] = self.A[s]
        B_big = self.B.permute(1, 0, 2).reshape(V, T * d)  # (V, T*d): [B_1 … B_T]
        x_big = torch.zeros(T * d, dtype=self.dtype, device=self.device)
        x_big[:d] = self.x0
        return ISAN(A_big, B_big, x_big, horizon=T)


class ISAN(TimeVaryingISAN):
    """A time-invariant ISAN (paper A, Definition C.1) run for ``horizon`` steps.

    Parameters
    ----------
    A : (V, d, d) tensor
    B : (V, d) tensor
    x0 : (d,) tensor
    horizon : int
        T, the length of the generated sequences.

    The same A and B serve every step (stored as broadcast views, no copies).
    """

    def __init__(self, A, B, x0, *, horizon: int, dtype=None):
        horizon = check_int("horizon", horizon, minimum=1)
        dims: dict[str, int] = {}
        device = A.device if isinstance(A, torch.Tensor) else None
        A = check_tensor("A", A, shape=("V", "d", "d"), dims=dims)
        B = check_tensor("B", B, shape=("V", "d"), dims=dims, device=device)
        super().__init__(
            A.unsqueeze(0).expand(horizon, -1, -1, -1),  # (T, V, d, d) view
            B.unsqueeze(0).expand(horizon, -1, -1),  # (T, V, d) view
            x0,
            dtype=dtype,
        )

    def to(self, device=None, dtype=None) -> ISAN:
        dtype = self.dtype if dtype is None else resolve_dtype("dtype", dtype)
        kw = {"device": check_device("device", device), "dtype": dtype}
        return ISAN(self.A[0].to(**kw), self.B[0].to(**kw), self.x0.to(**kw), horizon=self.horizon)


def all_sequences(vocab_size: int, length: int, *, device=None) -> torch.Tensor:
    """Every sequence in Σ^length in lexicographic order: → (V**length, length) LongTensor.

    Row i is the base-V expansion of i, most significant token first, matching the order of
    :meth:`TimeVaryingISAN.distribution`.

    Examples
    --------
    >>> all_sequences(2, 2).tolist()
    [[0, 0], [0, 1], [1, 0], [1, 1]]
    """
    V = check_int("vocab_size", vocab_size, minimum=1)
    t = check_int("length", length, minimum=0)
    device = check_device("device", device)
    if V**t > 10 * MAX_ENUMERATION:
        raise ValueError(f"all_sequences would list V**length = {V}**{t} = {V**t} rows; the limit is {10 * MAX_ENUMERATION}")
    if t == 0:
        return torch.zeros(1, 0, dtype=torch.long, device=device)
    return torch.tensor(list(itertools.product(range(V), repeat=t)), dtype=torch.long, device=device)


def _haar_orthogonal(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """n Haar-distributed d×d orthogonal matrices (QR of a Gaussian with the sign fix): (n, d, d)."""
    G = torch.randn(n, d, d, generator=generator, dtype=torch.float64)
    Q, R = torch.linalg.qr(G)
    signs = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))  # (n, d)
    signs[signs == 0] = 1.0
    return Q * signs.unsqueeze(-2)  # scale columns


def random_isan(
    vocab_size: int,
    horizon: int,
    hidden_dim: int,
    *,
    generator,
    scale: float = 1.0,
    dtype=None,
    device=None,
) -> TimeVaryingISAN:
    """A random time-varying ISAN whose logit rank is exactly ``hidden_dim`` for generic draws.

    Construction: every A[s, z] is a Haar-random orthogonal matrix (so states keep unit norm and
    never collapse), x0 is a uniform unit vector and B has i.i.d. N(0, scale²) entries, so each
    logit has standard deviation ``scale``. All draws happen on the CPU in float64 from
    ``generator`` and are then cast, so a seed gives the same model on every device and dtype.

    Why the rank is exactly d: the level-t logit matrix factors as (states of Σ^t) × (future maps),
    so its rank is at most min(d, V**t, V**(T−t) − 1) (Fact C.4; the last term counts the
    independent mean-centred columns of the futures of length <= T−t−1). Equality is a polynomial
    condition on the parameters that holds at some point, so it fails only on a measure-zero set;
    orthogonal A (full rank) and Gaussian B are absolutely continuous draws, hence equality holds
    with probability one. ``tests/synth/test_isan.py`` checks it on drawn sizes.

    Parameters
    ----------
    vocab_size, horizon, hidden_dim : int
        V >= 2, T >= 1, d >= 1.
    generator : torch.Generator (CPU) or int
        Source of randomness.
    scale : float
        Standard deviation of each logit before centring (> 0).
    dtype, device :
        Of the returned model (float64 and CPU by default).

    Examples
    --------
    >>> m = random_isan(4, 6, 3, generator=1)
    >>> m.A.shape, m.B.shape, m.x0.shape
    (torch.Size([6, 4, 3, 3]), torch.Size([6, 4, 3]), torch.Size([3]))
    """
    V = check_int("vocab_size", vocab_size, minimum=2)
    T = check_int("horizon", horizon, minimum=1)
    d = check_int("hidden_dim", hidden_dim, minimum=1)
    scale = check_real("scale", scale, low=0.0, low_open=True)
    dtype = resolve_dtype("dtype", dtype)
    device = check_device("device", device)
    gen = as_generator(generator, torch.device("cpu"))
    # float64 draws: A, its QR factors and B (≈ 3·T·V·d² numbers), then the cast copy
    itemsize = torch.empty(0, dtype=dtype).element_size()
    need = 8 * 3 * T * V * d * d + itemsize * T * V * d * (d + 1)
    check_memory(f"random_isan(vocab_size={V}, horizon={T}, hidden_dim={d}) (T·V = {T * V} matrices of {d}×{d})",
                 need, None, "use a smaller vocab_size, horizon or hidden_dim")
    A = _haar_orthogonal(T * V, d, gen).reshape(T, V, d, d)
    B = scale * torch.randn(T, V, d, generator=gen, dtype=torch.float64)
    if not bool(torch.isfinite(B.to(dtype)).all()):
        raise ValueError(
            f"scale={scale:g} overflows dtype {dtype}: B's entries are scale × N(0, 1) draws and some exceed "
            f"its largest finite value {torch.finfo(dtype).max:.3g}; use a smaller scale or dtype=torch.float64"
        )
    x0 = torch.randn(d, generator=gen, dtype=torch.float64)
    x0 = x0 / x0.norm()
    kw = {"device": device, "dtype": dtype}
    return TimeVaryingISAN(A.to(**kw), B.to(**kw), x0.to(**kw))
