"""Copying as a time-varying ISAN (paper A, Definition C.8 and Fact C.9).

The n-bit copying distribution is uniform over the 2^n sequences a ∘ a of length 2n, a ∈ {0, 1}^n.

Fact C.9's ISAN has hidden dim n + 1 and a strength C > 0. The state starts at (0, …, 0, 1); at
step s <= n the readout is zero (a fair coin) and the token is written into coordinate s (the last
coordinate stays 1, which makes the write linear: x ← x + z·x_{n+1}·e_s). At step n + j the state is
left unchanged and the readout scores token 0 with C/2 (read from the constant coordinate) and
token 1 with C·a_j (read from coordinate j). Either way the copied bit wins with probability
σ(C/2) = 1/(1 + e^{−C/2}), so every copy step errs with probability q = σ(−C/2).

Closed-form TV. The ISAN gives a ∘ b the probability 2^{−n}(1 − q)^{n−k} q^k, k = Hamming(a, b),
while copying gives 2^{−n}[a = b]. Copying's mass sits on a = b, where the ISAN is smaller, so

    TV = Σ_a 2^{−n}(1 − (1 − q)^n) = 1 − σ(C/2)^n = −expm1(−n·softplus(−C/2)),

which falls like n·e^{−C/2} as C grows (claim T5).
"""

from __future__ import annotations

import math

import torch

from logitrank._validation import check_device, check_int, check_real, check_tokens, resolve_dtype

from ._isan import MAX_ENUMERATION, TimeVaryingISAN, all_sequences

__all__ = ["CopyingISAN", "copying", "copying_distribution", "copying_log_prob", "copying_tv"]

_METHODS = ("closed_form", "enumerate")


def _check_n_bits(n_bits) -> int:
    return check_int("n_bits", n_bits, minimum=1)


def _check_strength(strength) -> float:
    return check_real("strength", strength, low=0.0, low_open=True)


class CopyingISAN(TimeVaryingISAN):
    """The ISAN returned by :func:`copying`; a :class:`TimeVaryingISAN` that remembers n and C.

    Attributes
    ----------
    n_bits : int
        n; the horizon is 2n and the hidden dim n + 1.
    strength : float
        C > 0; each copy step is right with probability σ(C/2).
    """

    def __init__(self, n_bits: int, strength: float, *, dtype=None, device=None):
        n = _check_n_bits(n_bits)
        C = _check_strength(strength)
        dtype = resolve_dtype("dtype", dtype)
        device = check_device("device", device)
        if C > torch.finfo(dtype).max:
            raise ValueError(f"strength={C:g} overflows dtype {dtype} (largest finite value {torch.finfo(dtype).max:.3g}): "
                             "the readout B holds C and C/2; use dtype=torch.float64 or a smaller strength")
        d, T = n + 1, 2 * n
        kw = {"dtype": torch.float64}
        # 1. Writing steps s = 1..n (index s−1): A[s−1, z] = I + z·e_{s−1} e_nᵀ stores z in coordinate s−1.
        A = torch.eye(d, **kw).expand(T, 2, d, d).clone()  # (T, 2, d, d)
        for s in range(n):
            A[s, 1, s, n] = 1.0
        # 2. Copy steps n + j (index n + j − 1): state unchanged, readout (C/2 from the constant, C·a_j).
        B = torch.zeros(T, 2, d, **kw)
        for j in range(n):
            B[n + j, 0, n] = C / 2
            B[n + j, 1, j] = C
        x0 = torch.zeros(d, **kw)
        x0[n] = 1.0
        out = {"dtype": dtype, "device": device}
        super().__init__(A.to(**out), B.to(**out), x0.to(**out))
        self.n_bits, self.strength = n, C

    def __repr__(self) -> str:
        return f"CopyingISAN(n_bits={self.n_bits}, strength={self.strength}, dtype={self.dtype}, device={self.device})"

    def to(self, device=None, dtype=None) -> CopyingISAN:
        """The same copying ISAN on another device and/or dtype."""
        dtype = self.dtype if dtype is None else resolve_dtype("dtype", dtype)
        device = self.device if device is None else device
        return CopyingISAN(self.n_bits, self.strength, dtype=dtype, device=device)


def copying(n_bits: int, strength: float, *, dtype=None, device=None) -> CopyingISAN:
    """Fact C.9's time-varying ISAN of hidden dim n + 1 approximating n-bit copying (paper A, App. C.2).

    Parameters
    ----------
    n_bits : int >= 1
        n; sequences have length T = 2n over V = 2 tokens.
    strength : float > 0
        C; the copied bit is emitted with probability σ(C/2), so the TV to exact copying is
        1 − σ(C/2)^n (see :func:`copying_tv`). Logits are ±C/4 after centring, finite for any
        finite C.
    dtype, device :
        Of the returned model (float64 on the CPU by default).

    Returns
    -------
    CopyingISAN
        ``A`` (2n, 2, n+1, n+1), ``B`` (2n, 2, n+1), ``x0`` (n+1,).

    Examples
    --------
    >>> import torch
    >>> m = copying(3, 20.0)
    >>> m.horizon, m.hidden_dim
    (6, 4)
    >>> bool(m.log_prob(torch.tensor([[1, 0, 1, 1, 0, 1]])).exp() > 0.99 / 8)
    True
    """
    return CopyingISAN(n_bits, strength, dtype=dtype, device=device)


def copying_log_prob(n_bits: int, sequences, *, dtype=None) -> torch.Tensor:
    """Exact log-probability of (prefixes of) sequences under n-bit copying (Definition C.8).

    A prefix y_{1:t} has probability 2^{−min(t, n)} when y_{n+j} = y_j for every n + j <= t, and 0
    otherwise (log-probability −inf, never NaN).

    Parameters
    ----------
    n_bits : int >= 1
    sequences : (m, t) LongTensor (or array / nested list) of bits, t <= 2n
    dtype : floating torch dtype, optional (float64 by default); the device is that of ``sequences``.

    Returns
    -------
    (m,) tensor

    Examples
    --------
    >>> copying_log_prob(2, [[1, 0, 1, 0], [1, 0, 1, 1]]).exp().tolist()
    [0.25, 0.0]
    """
    n = _check_n_bits(n_bits)
    dtype = resolve_dtype("dtype", dtype)
    device = sequences.device if isinstance(sequences, torch.Tensor) else torch.device("cpu")
    seq = check_tokens(
        "sequences", sequences, vocab_size=2, device=device,
        max_length=2 * n, max_length_reason=f" (= 2·n_bits for n_bits={n})",
    )
    m, t = seq.shape
    copied = t - n  # how many copy positions the prefix reaches
    out = torch.full((m,), -min(t, n) * math.log(2), dtype=dtype, device=device)
    if copied > 0:
        ok = (seq[:, n:t] == seq[:, :copied]).all(dim=1)  # (m,)
        out = torch.where(ok, out, torch.tensor(-math.inf, dtype=dtype, device=device))
    return out


def copying_distribution(n_bits: int, *, dtype=None, device=None) -> torch.Tensor:
    """Exact n-bit copying probabilities of all 4^n sequences, lexicographic order (as ``distribution()``).

    Returns
    -------
    (4**n,) tensor: 2^{−n} at the sequences a ∘ a, 0 elsewhere.

    Examples
    --------
    >>> copying_distribution(1).tolist()
    [0.5, 0.0, 0.0, 0.5]
    """
    n = _check_n_bits(n_bits)
    if 4**n > MAX_ENUMERATION:
        raise ValueError(
            f"copying_distribution enumerates 4**n_bits = {4**n} sequences, more than {MAX_ENUMERATION}; "
            f"use copying_log_prob on samples instead"
        )
    return copying_log_prob(n, all_sequences(2, 2 * n, device=device), dtype=dtype).exp()


def copying_tv(n_bits: int, strength: float, *, method: str = "closed_form") -> float:
    """Total variation between Fact C.9's ISAN (:func:`copying`) and exact n-bit copying.

    Parameters
    ----------
    n_bits : int >= 1
    strength : float > 0
    method : {"closed_form", "enumerate"}
        "closed_form" returns 1 − σ(C/2)^n, evaluated as −expm1(−n·log1p(e^{−C/2})) so that it stays
        accurate (relative error ~ eps) when the TV is tiny. "enumerate" builds the ISAN in float64
        and sums ½|p − q| over all 4^n sequences (n <= 10); its absolute error is a few eps·n.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import math
    >>> round(copying_tv(2, 2 * math.log(3)), 12)    # σ(log 3) = 3/4, so TV = 1 − 9/16
    0.4375
    >>> abs(copying_tv(3, 10.0) - copying_tv(3, 10.0, method="enumerate")) < 1e-12
    True
    """
    n = _check_n_bits(n_bits)
    C = _check_strength(strength)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if method == "closed_form":
        return -math.expm1(-n * math.log1p(math.exp(-C / 2)))
    p = copying(n, C).distribution()
    q = copying_distribution(n)
    return float(0.5 * (p - q).abs().sum())
