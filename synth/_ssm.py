"""Linear-in-state SSMs (paper A, Definitions C.5–C.6) and their ISAN form (Fact C.7).

A selective state-space layer has a state x ∈ R^d, inputs u ∈ R^p and outputs y ∈ R^q. At step
t = 1..T it computes

    y_t = C(u_t) x_{t−1} + D(u_t) u_t,        x_t = A(u_t) x_{t−1} + B(u_t) u_t,

with matrices that may depend on the input. The language model (Definition C.6) emits
z_t ~ softmax(U y_t) and feeds back u_{t+1} = E e(z_t) (paper A writes the embedding as V; it is ``E``
here so it does not clash with the vocabulary size V). The first input u_1 is a fixed vector.

Since u_t is either u_1 or a column of E, there are only V + 1 distinct inputs. The matrices are
therefore stored per *input id*: row z < V holds A(E e(z)), …, and the last row (id V) holds
A(u_1), …. This covers every choice of input dependence the definition allows.
"""

from __future__ import annotations

import torch

from logitrank._validation import as_generator, check_device, check_int, check_real, check_tensor, resolve_dtype

from ._isan import ISAN, MAX_ENUMERATION, _haar_orthogonal, all_sequences
from ._protocol import LogitModel, _draw

__all__ = ["LinearSSM", "random_linear_ssm"]


class LinearSSM(LogitModel):
    """A linear-in-state SSM language model (paper A, Definition C.6), with O(T) sampling and scoring.

    Parameters
    ----------
    A : (V+1, d, d) tensor
        State transition per input id (ids 0..V−1: u = E e(z); id V: the first input u_1).
    B : (V+1, d, p) tensor
        Input-to-state map per input id.
    C : (V+1, q, d) tensor
        State-to-output map per input id.
    D : (V+1, q, p) tensor
        Input-to-output map per input id.
    U : (V, q) tensor
        Readout: the next-token scores are U y_t.
    E : (p, V) tensor
        Token embedding (paper A's V): u_{t+1} = E[:, z_t].
    x0 : (d,) tensor
        Initial state.
    u1 : (p,) tensor
        The fixed first input.
    horizon : int
        T, the sequence length.
    dtype : torch dtype, optional
        Cast every tensor to it; when omitted they must share one floating dtype.

    The device is that of ``A``; the others must be on it too.

    Examples
    --------
    >>> m = random_linear_ssm(3, 4, state_dim=2, input_dim=2, output_dim=2, generator=0)
    >>> isan = m.to_isan()
    >>> isan.hidden_dim                                   # d + 2q + 1 (Fact C.7)
    7
    >>> bool((m.distribution() - isan.distribution()).abs().max() < 1e-14)
    True
    """

    def __init__(self, A, B, C, D, U, E, x0, u1, *, horizon: int, dtype=None):
        horizon = check_int("horizon", horizon, minimum=1)
        dims: dict[str, int] = {}
        device = A.device if isinstance(A, torch.Tensor) else None
        A = check_tensor("A", A, shape=("V+1", "d", "d"), dims=dims)
        B = check_tensor("B", B, shape=("V+1", "d", "p"), dims=dims, device=device)
        C = check_tensor("C", C, shape=("V+1", "q", "d"), dims=dims, device=device)
        D = check_tensor("D", D, shape=("V+1", "q", "p"), dims=dims, device=device)
        U = check_tensor("U", U, shape=("V", "q"), dims=dims, device=device)
        E = check_tensor("E", E, shape=("p", "V"), dims=dims, device=device)
        x0 = check_tensor("x0", x0, shape=("d",), dims=dims, device=device)
        u1 = check_tensor("u1", u1, shape=("p",), dims=dims, device=device)
        tensors = [A, B, C, D, U, E, x0, u1]
        if dtype is None:
            if len({t.dtype for t in tensors}) > 1:
                raise TypeError(
                    "A, B, C, D, U, E, x0 and u1 must share one dtype; got "
                    + ", ".join(str(t.dtype) for t in tensors)
                    + ". Pass dtype=torch.float64 (say) to cast them all."
                )
        else:
            dtype = resolve_dtype("dtype", dtype)
            A, B, C, D, U, E, x0, u1 = (t.to(dtype) for t in tensors)
        V = dims["V"]
        if V < 2:
            raise ValueError(f"need a vocabulary of V >= 2 tokens (rows of U, columns of E); got V={V}")
        if dims["V+1"] != V + 1:
            raise ValueError(
                f"A, B, C and D must have V + 1 = {V + 1} rows (one per token, the last for the first "
                f"input u1), where V={V} is set by U and E; got {dims['V+1']} rows"
            )
        self.A, self.B, self.C, self.D, self.U, self.E, self.x0, self.u1 = A, B, C, D, U, E, x0, u1
        self.vocab_size, self.horizon = V, horizon
        self.device, self.dtype = A.device, A.dtype
        # Inputs per id and their fixed contributions: u (V+1, p), B(u)u (V+1, d), D(u)u (V+1, q).
        self._inputs = torch.cat([E.T, u1.unsqueeze(0)], dim=0)  # (V+1, p)
        self._Bu = torch.einsum("idp,ip->id", B, self._inputs)  # (V+1, d)
        self._Du = torch.einsum("iqp,ip->iq", D, self._inputs)  # (V+1, q)

    @property
    def state_dim(self) -> int:
        """d, the size of the SSM state."""
        return self.A.shape[-1]

    @property
    def input_dim(self) -> int:
        """p, the size of the inputs u."""
        return self.B.shape[-1]

    @property
    def output_dim(self) -> int:
        """q, the size of the outputs y."""
        return self.C.shape[1]

    def __repr__(self) -> str:
        return (
            f"LinearSSM(vocab_size={self.vocab_size}, horizon={self.horizon}, state_dim={self.state_dim}, "
            f"input_dim={self.input_dim}, output_dim={self.output_dim}, dtype={self.dtype}, device={self.device})"
        )

    def to(self, device=None, dtype=None) -> LinearSSM:
        """A copy on another device and/or dtype."""
        dtype = self.dtype if dtype is None else resolve_dtype("dtype", dtype)
        kw = {"device": device, "dtype": dtype}
        parts = (self.A, self.B, self.C, self.D, self.U, self.E, self.x0, self.u1)
        return LinearSSM(*(t.to(**kw) for t in parts), horizon=self.horizon)

    # -- the recurrence (Definition C.5) ---------------------------------------------------------
    def _start(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x_0 (n, d) and the id of u_1 (n,) for a batch of n."""
        ids = torch.full((n,), self.vocab_size, dtype=torch.long, device=self.device)
        return self.x0.expand(n, -1), ids

    def _scores(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """U y_t with y_t = C(u_t) x_{t−1} + D(u_t) u_t: x (n, d), ids (n,) → (n, V)."""
        y = torch.bmm(self.C[ids], x.unsqueeze(-1)).squeeze(-1) + self._Du[ids]  # (n, q)
        return y @ self.U.T  # (n, V)

    def _advance(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """x_t = A(u_t) x_{t−1} + B(u_t) u_t: (n, d), (n,) → (n, d)."""
        return torch.bmm(self.A[ids], x.unsqueeze(-1)).squeeze(-1) + self._Bu[ids]  # (n, d)

    def states(self, prefixes) -> torch.Tensor:
        """The SSM states x_0, …, x_t after the inputs u_1, …, u_t of each prefix.

        x_s has consumed u_1 and the embeddings of z_1 … z_{s−1}; the last token of the prefix
        only enters through u_{t+1}, i.e. the next step.

        Parameters
        ----------
        prefixes : (B, t) LongTensor, t <= T

        Returns
        -------
        (B, t + 1, d) tensor
        """
        p = self._check_sequences(prefixes, name="prefixes")
        x, ids = self._start(p.shape[0])
        out = [x]
        for s in range(p.shape[1]):
            x, ids = self._advance(x, ids), p[:, s]
            out.append(x)
        return torch.stack(out, dim=1)  # (B, t+1, d)

    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        x, ids = self._start(prefixes.shape[0])
        for s in range(prefixes.shape[1]):
            x = self._advance(x, ids)
            ids = prefixes[:, s]  # u_{s+2} = E e(z_{s+1})
        return self._scores(x, ids)

    def sample(self, n: int, *, generator, length: int | None = None) -> torch.Tensor:
        """n sequences drawn in one pass of the recurrence: → (n, length) LongTensor (length defaults to T)."""
        n = check_int("n", n, minimum=0)
        length = self._check_length(length)
        gen = as_generator(generator, self.device)
        out = torch.empty(n, length, dtype=torch.long, device=self.device)
        x, ids = self._start(n)
        for s in range(length):
            out[:, s] = _draw(torch.softmax(self._scores(x, ids), dim=-1), gen)  # z_{s+1}
            x, ids = self._advance(x, ids), out[:, s]
        return out

    def log_prob(self, sequences) -> torch.Tensor:
        """log Pr[y_{1:t}] in one pass: (n, t) LongTensor → (n,)."""
        seq = self._check_sequences(sequences)
        x, ids = self._start(seq.shape[0])
        total = torch.zeros(seq.shape[0], dtype=self.dtype, device=self.device)
        for s in range(seq.shape[1]):
            lp = torch.log_softmax(self._scores(x, ids), dim=-1)  # (n, V)
            total = total + lp.gather(1, seq[:, s : s + 1]).squeeze(1)
            x, ids = self._advance(x, ids), seq[:, s]
        return total

    def distribution(self, *, max_sequences: int = MAX_ENUMERATION) -> torch.Tensor:
        """Exact probabilities of all V**T sequences in lexicographic order: → (V**T,) tensor.

        Scores every sequence with :meth:`log_prob`; refuses when V**T > ``max_sequences``.
        """
        V, T = self.vocab_size, self.horizon
        max_sequences = check_int("max_sequences", max_sequences, minimum=1)
        if V**T > max_sequences:
            raise ValueError(
                f"distribution() enumerates V**T = {V}**{T} = {V**T} sequences, more than "
                f"max_sequences={max_sequences}; compare log_prob on samples instead"
            )
        return self.log_prob(all_sequences(V, T, device=self.device)).exp()

    # -- Fact C.7 ------------------------------------------------------------------------------
    def to_isan(self) -> ISAN:
        """The equivalent ISAN of hidden dim d + 2q + 1 (paper A, Fact C.7).

        Following the paper's proof, the ISAN state before token t is

            h_{t−1} = (x_t, C(u_t) x_{t−1}, D(u_t) u_t, 1)   ∈ R^{d + q + q + 1}:

        the SSM state already advanced by u_t, the two parts of y_t kept apart, and a constant 1 that
        turns the input terms B(u)u and D(u)u into linear maps. The readout U·[0 I I 0] gives U y_t.
        Token z fixes u_{t+1} = E e(z), and the map to h_t is linear:

            x_{t+1} = A(u_{t+1}) x_t + B(u_{t+1}) u_{t+1}·1,   C(u_{t+1}) x_t,   D(u_{t+1}) u_{t+1}·1,   1.

        The matrices depend on the token only, so the result is a time-invariant :class:`ISAN`
        (Definition C.1) run for T steps; its A is (V, D, D), B is (V, D), D = d + 2q + 1.
        (The two q-blocks are only ever read through their sum, so d + q + 1 coordinates would do; the
        paper's layout is kept.)
        """
        V, d, q = self.vocab_size, self.state_dim, self.output_dim
        D = d + 2 * q + 1
        kw = {"dtype": self.dtype, "device": self.device}
        xs, cs, ds, one = slice(0, d), slice(d, d + q), slice(d + q, d + 2 * q), d + 2 * q
        A = torch.zeros(V, D, D, **kw)
        A[:, xs, xs] = self.A[:V]
        A[:, xs, one] = self._Bu[:V]
        A[:, cs, xs] = self.C[:V]
        A[:, ds, one] = self._Du[:V]
        A[:, one, one] = 1.0
        B = torch.zeros(V, D, **kw)
        B[:, cs] = self.U
        B[:, ds] = self.U
        start = self.vocab_size  # the id of u_1
        h0 = torch.zeros(D, **kw)
        h0[xs] = self.A[start] @ self.x0 + self._Bu[start]
        h0[cs] = self.C[start] @ self.x0
        h0[ds] = self._Du[start]
        h0[one] = 1.0
        return ISAN(A, B, h0, horizon=self.horizon)


def random_linear_ssm(
    vocab_size: int,
    horizon: int,
    *,
    state_dim: int,
    input_dim: int,
    output_dim: int,
    generator,
    scale: float = 1.0,
    dtype=None,
    device=None,
) -> LinearSSM:
    """A random linear-in-state SSM (paper A, Definition C.6) with input-dependent A, B, C, D.

    Construction (float64 on the CPU from ``generator``, then cast): every A(u) is ρ·Q with Q a
    Haar-random orthogonal matrix and ρ uniform in [0.5, 1), so states stay bounded over any
    horizon; B, C, D, E, u_1 and x_0 have i.i.d. Gaussian entries with variance 1/(fan-in); U has
    i.i.d. N(0, scale²/q) entries, so logits are O(``scale``).

    Parameters
    ----------
    vocab_size, horizon : int
        V >= 2, T >= 1.
    state_dim, input_dim, output_dim : int
        d, p, q >= 1.
    generator : torch.Generator (CPU) or int
    scale : float > 0
    dtype, device :
        Of the returned model (float64 on the CPU by default).

    Examples
    --------
    >>> m = random_linear_ssm(2, 5, state_dim=3, input_dim=2, output_dim=1, generator=0)
    >>> m.A.shape, m.U.shape, m.E.shape
    (torch.Size([3, 3, 3]), torch.Size([2, 1]), torch.Size([2, 2]))
    >>> m.sample(4, generator=1).shape
    torch.Size([4, 5])
    """
    V = check_int("vocab_size", vocab_size, minimum=2)
    T = check_int("horizon", horizon, minimum=1)
    d = check_int("state_dim", state_dim, minimum=1)
    p = check_int("input_dim", input_dim, minimum=1)
    q = check_int("output_dim", output_dim, minimum=1)
    scale = check_real("scale", scale, low=0.0, low_open=True)
    dtype = resolve_dtype("dtype", dtype)
    device = check_device("device", device)
    gen = as_generator(generator, torch.device("cpu"))

    def gauss(*shape, var):
        return var**0.5 * torch.randn(*shape, generator=gen, dtype=torch.float64)

    rho = 0.5 + 0.5 * torch.rand(V + 1, 1, 1, generator=gen, dtype=torch.float64)
    A = rho * _haar_orthogonal(V + 1, d, gen)  # (V+1, d, d)
    B = gauss(V + 1, d, p, var=1 / p)
    C = gauss(V + 1, q, d, var=1 / d)
    D = gauss(V + 1, q, p, var=1 / p)
    U = gauss(V, q, var=scale**2 / q)
    E = gauss(p, V, var=1.0)
    x0 = gauss(d, var=1 / d)
    u1 = gauss(p, var=1.0)
    kw = {"dtype": dtype, "device": device}
    return LinearSSM(*(t.to(**kw) for t in (A, B, C, D, U, E, x0, u1)), horizon=T)
