"""Noisy parity as a time-varying ISAN (paper A, Definition C.10 and Fact C.11).

A noisy parity over {0, 1}^{n+1} has a secret y ∈ {0, 1}^n and a noise rate p. Its first n tokens
are fair coin flips z_1 … z_n; the last token is the parity ⟨y, z⟩ mod 2, flipped with
probability p.

Two exact ISANs are built here (V = 2, T = n + 1, the first n readouts are zero so those tokens are
uniform):

* ``hidden_dim=2`` (Fact C.11's dimension). The state is the one-hot vector of the running parity
  π_s = ⟨y_{1:s}, z_{1:s}⟩ mod 2: a token z_s = 1 at a secret position (y_s = 1) swaps the two
  coordinates, every other token leaves the state alone. The last readout maps e_π to the scores
  (c/2, −c/2) when π = 0 and (−c/2, c/2) when π = 1, where c = log((1 − p)/p).
* ``hidden_dim=1``. Mean-centred logits make the two parity classes give the rows r and −r, so one
  coordinate suffices: the state is (−1)^π, multiplied by A = −1 on a secret position with token 1,
  and the last readout is (c/2, −c/2)ᵀ.

Both give the same distribution; the second shows the mean-centred logit rank is at most 1 (the
paper states dimension 2 through Theorem 4.3 without using the centring).

Noise p = 0 would need the logit c = +∞, which no finite ISAN holds, so the ISAN builder requires
0 < p < 1/2 (as Definition C.10 does) and says so; the closed form
:func:`noisy_parity_log_prob` accepts p = 0 and returns −inf for impossible sequences, never NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from logitrank._validation import check_device, check_int, check_real, check_tokens, resolve_dtype

from ._isan import TimeVaryingISAN

__all__ = ["NoisyParityISAN", "noisy_parity", "noisy_parity_log_prob"]


def _check_secret(secret) -> tuple[int, ...]:
    """Return the secret as a tuple of 0/1 ints (length n >= 1), or raise naming it."""
    if isinstance(secret, torch.Tensor):
        values = secret.detach().cpu().numpy()
    elif isinstance(secret, (np.ndarray, list, tuple)):
        try:
            values = np.asarray(secret)
        except ValueError as err:  # ragged nested lists
            raise ValueError(f"secret must be a 1-D sequence of 0/1 bits; {err}") from None
    elif isinstance(secret, (str, bytes)):
        raise TypeError(f"secret must be a sequence of 0/1 ints such as [1, 0, 1]; got {type(secret).__name__} {secret!r}")
    else:
        raise TypeError(f"secret must be a sequence of 0/1 ints such as [1, 0, 1]; got {type(secret).__name__}")
    if values.ndim != 1:
        raise ValueError(f"secret must be a 1-D sequence of 0/1 bits; got shape {values.shape}")
    if values.size == 0:
        raise ValueError("secret must hold n >= 1 bits; got an empty sequence")
    if values.dtype.kind not in "iub":
        raise TypeError(f"secret must hold 0/1 ints; got dtype {values.dtype}")
    bad = values[(values != 0) & (values != 1)]
    if bad.size:
        raise ValueError(f"secret must hold only the bits 0 and 1; got {bad[0].item()!r}")
    return tuple(int(v) for v in values)


def _check_noise(noise, *, allow_zero: bool) -> float:
    """noise in [0, 1/2) (closed form) or (0, 1/2) (ISAN, whose logit log((1−p)/p) must be finite)."""
    p = check_real("noise", noise, low=0.0, high=0.5, high_open=True)
    if p == 0.0 and not allow_zero:
        raise ValueError(
            "noise must lie in (0, 0.5) for the ISAN; got 0.0: a noiseless parity bit needs the "
            "infinite logit log((1 − p)/p). Use noisy_parity_log_prob for the noiseless "
            "distribution, or a tiny positive noise such as 1e-12 (finite logit ≈ 27.6)"
        )
    return p


class NoisyParityISAN(TimeVaryingISAN):
    """The ISAN returned by :func:`noisy_parity`; a :class:`TimeVaryingISAN` that remembers its source.

    Attributes
    ----------
    secret : tuple of int
        y ∈ {0, 1}^n.
    noise : float
        p ∈ (0, 1/2).
    n_bits : int
        n; the horizon is n + 1.

    Build it with :func:`noisy_parity` (the constructor takes the same arguments).
    """

    def __init__(self, secret, noise, *, hidden_dim: int = 2, dtype=None, device=None):
        y = _check_secret(secret)
        p = _check_noise(noise, allow_zero=False)
        d = check_int("hidden_dim", hidden_dim, minimum=1, maximum=2)
        dtype = resolve_dtype("dtype", dtype)
        device = check_device("device", device)
        n = len(y)
        # 1. The bias of the parity bit: scores (c/2, −c/2) give Pr[b = 0] = 1 − p exactly.
        c = math.log1p(-p) - math.log(p)
        kw = {"dtype": torch.float64}
        A = torch.empty(n + 1, 2, d, d, **kw)
        B = torch.zeros(n + 1, 2, d, **kw)
        secret_bit = torch.tensor(y + (0,), **kw).view(n + 1, 1, 1)  # (T, 1, 1), no flip after the last token
        if d == 2:
            # 2. One-hot parity state; token 1 at a secret position swaps the coordinates.
            identity, swap = torch.eye(2, **kw), torch.tensor([[0.0, 1.0], [1.0, 0.0]], **kw)
            A[:, 0] = identity
            A[:, 1] = secret_bit * swap + (1 - secret_bit) * identity  # (T, 2, 2)
            B[n] = (c / 2) * torch.tensor([[1.0, -1.0], [-1.0, 1.0]], **kw)  # row b, column π
            x0 = torch.tensor([1.0, 0.0], **kw)
        else:
            # 2'. Signed state (−1)^π; token 1 at a secret position multiplies it by −1.
            A[:, 0] = 1.0
            A[:, 1] = 1.0 - 2.0 * secret_bit  # (T, 1, 1)
            B[n] = torch.tensor([[c / 2], [-c / 2]], **kw)
            x0 = torch.ones(1, **kw)
        out = {"dtype": dtype, "device": device}
        super().__init__(A.to(**out), B.to(**out), x0.to(**out))
        self.secret, self.noise, self.n_bits = y, p, n

    def __repr__(self) -> str:
        return (
            f"NoisyParityISAN(n_bits={self.n_bits}, noise={self.noise}, hidden_dim={self.hidden_dim}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    def to(self, device=None, dtype=None) -> NoisyParityISAN:
        """The same noisy parity on another device and/or dtype (rebuilt from secret and noise)."""
        dtype = self.dtype if dtype is None else resolve_dtype("dtype", dtype)
        device = self.device if device is None else device
        return NoisyParityISAN(self.secret, self.noise, hidden_dim=self.hidden_dim, dtype=dtype, device=device)

    def exact_log_prob(self, sequences) -> torch.Tensor:
        """The closed form :func:`noisy_parity_log_prob` for this model's secret and noise: (m, t) → (m,)."""
        seq = self._check_sequences(sequences)
        return noisy_parity_log_prob(self.secret, self.noise, seq, dtype=self.dtype)


def noisy_parity(secret, noise: float, *, hidden_dim: int = 2, dtype=None, device=None) -> NoisyParityISAN:
    """An exact time-varying ISAN for the noisy parity of ``secret`` (paper A, Def. C.10, Fact C.11).

    Parameters
    ----------
    secret : (n,) sequence of 0/1 ints (list, tuple, numpy array or tensor), n >= 1
        y; position s (0-based) takes part in the parity when ``secret[s] == 1``.
    noise : float in (0, 1/2)
        p, the probability that the last token is the flipped parity. p = 0 is refused: it needs
        an infinite logit (use :func:`noisy_parity_log_prob`, which accepts it).
    hidden_dim : {2, 1}
        2 builds the paper's dimension (one-hot running parity); 1 builds the signed-state ISAN
        that shows the mean-centred logit rank is at most 1. Both give the same distribution.
    dtype, device :
        Of the returned model (float64 on the CPU by default).

    Returns
    -------
    NoisyParityISAN
        A :class:`TimeVaryingISAN` with V = 2, T = n + 1, d = ``hidden_dim``; ``A`` is (n+1, 2, d, d),
        ``B`` is (n+1, 2, d). ``log_prob`` and ``sample`` run in O(T), so n = 64 and beyond are fine.

    Examples
    --------
    >>> import math, torch
    >>> m = noisy_parity([1, 0, 1], 0.1)
    >>> m.horizon, m.hidden_dim
    (4, 2)
    >>> seq = torch.tensor([[1, 1, 0, 1], [1, 1, 0, 0]])   # parity of bits 1 and 3 is 1
    >>> torch.allclose(m.log_prob(seq).exp(), torch.tensor([0.9 / 8, 0.1 / 8], dtype=torch.float64))
    True
    >>> m1 = noisy_parity([1, 0, 1], 0.1, hidden_dim=1)
    >>> torch.allclose(m1.log_prob(seq), m.log_prob(seq))
    True
    """
    return NoisyParityISAN(secret, noise, hidden_dim=hidden_dim, dtype=dtype, device=device)


def noisy_parity_log_prob(secret, noise: float, sequences, *, dtype=None) -> torch.Tensor:
    """Closed-form log-probability of (prefixes of) sequences under a noisy parity (Def. C.10).

    For a prefix of length t <= n it is −t·log 2; for a full sequence (z, b) it is
    −n·log 2 + log(1 − p) when b = ⟨y, z⟩ mod 2 and −n·log 2 + log p otherwise. The parity is
    computed in integer arithmetic, so the only rounding is in the two logarithms.

    Parameters
    ----------
    secret : (n,) sequence of 0/1 ints
    noise : float in [0, 1/2)
        p = 0 is allowed: a full sequence with the wrong parity bit gets −inf (never NaN).
    sequences : (m, t) LongTensor (or array / nested list) of bits, t <= n + 1
    dtype : floating torch dtype, optional
        Of the result (float64 by default); the device is that of ``sequences``.

    Returns
    -------
    (m,) tensor

    Examples
    --------
    >>> import math
    >>> lp = noisy_parity_log_prob([1, 1], 0.0, [[1, 0, 1], [1, 0, 0]])
    >>> lp.tolist() == [-2 * math.log(2), -math.inf]
    True
    """
    y = _check_secret(secret)
    p = _check_noise(noise, allow_zero=True)
    dtype = resolve_dtype("dtype", dtype)
    n = len(y)
    device = sequences.device if isinstance(sequences, torch.Tensor) else torch.device("cpu")
    seq = check_tokens(
        "sequences", sequences, vocab_size=2, device=device,
        max_length=n + 1, max_length_reason=f" (= n + 1 for a secret of n={n} bits)",
    )
    m, t = seq.shape
    out = torch.full((m,), -min(t, n) * math.log(2), dtype=dtype, device=device)
    if t == n + 1:
        y_t = torch.tensor(y, dtype=torch.long, device=device)
        parity = (seq[:, :n] * y_t).sum(dim=1) % 2  # (m,), exact integers
        log_right = math.log1p(-p)
        log_wrong = math.log(p) if p > 0 else -math.inf
        bit_term = torch.where(
            seq[:, n] == parity,
            torch.tensor(log_right, dtype=dtype, device=device),
            torch.tensor(log_wrong, dtype=dtype, device=device),
        )
        out = out + bit_term
    return out
