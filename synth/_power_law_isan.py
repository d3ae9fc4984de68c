"""ISANs with power-law spectra: a dim-d ISAN whose level logit matrices have singular values that
follow planted scales s_i ≍ i^{−α} (the setting σ_i ≍ C·i^{−α} of paper A, Fact A.1)."""

from __future__ import annotations

import math

import torch

from logitrank._validation import as_generator, check_device, check_int, check_real, resolve_dtype

from ._isan import TimeVaryingISAN

__all__ = ["PowerLawISAN", "power_law_isan"]


# -- power-law spectra --------------------------------------------------------------------------
def _code_signs(horizon: int, n_blocks: int) -> torch.Tensor:
    """σ[s, k] ∈ {±1}, (T, n_blocks): every window of L+1 steps has a step where all blocks agree
    (position 0 of the period) and, for each pair of blocks, a step where they differ (bit j of k)."""
    L = max(1, math.ceil(math.log2(n_blocks))) if n_blocks > 1 else 1
    signs = torch.ones(horizon, n_blocks, dtype=torch.float64)
    k = torch.arange(n_blocks)
    for s in range(horizon):
        pos = s % (L + 1)
        if pos > 0:
            signs[s] = 1.0 - 2.0 * ((k >> (pos - 1)) & 1).to(torch.float64)
    return signs


class PowerLawISAN(TimeVaryingISAN):
    """The ISAN returned by :func:`power_law_isan`; remembers ``alpha`` and the planted ``scales``.

    Attributes
    ----------
    alpha : float
        The requested decay exponent α > 0.
    scales : (d,) tensor
        s_i, the planted per-coordinate scales (equal in pairs, ≈ i^{−α} up to normalisation).
    """

    def __init__(self, A, B, x0, *, alpha: float, scales: torch.Tensor):
        super().__init__(A, B, x0)
        self.alpha = alpha
        self.scales = scales.to(device=self.device, dtype=self.dtype)

    @property
    def first_exact_level(self) -> int:
        """L + 1 = 1 + max(1, ⌈log2(d/2)⌉): for even V the history states of every level t at or
        above it are exactly orthogonal, E_tᵀE_t = (V^t/2)·I (see :func:`power_law_isan`)."""
        n_blocks = self.hidden_dim // 2
        return 1 + (max(1, math.ceil(math.log2(n_blocks))) if n_blocks > 1 else 1)

    def __repr__(self) -> str:
        return (
            f"PowerLawISAN(vocab_size={self.vocab_size}, horizon={self.horizon}, hidden_dim={self.hidden_dim}, "
            f"alpha={self.alpha}, dtype={self.dtype}, device={self.device})"
        )

    def to(self, device=None, dtype=None) -> PowerLawISAN:
        """A copy on another device and/or dtype."""
        dtype = self.dtype if dtype is None else resolve_dtype("dtype", dtype)
        kw = {"device": device, "dtype": dtype}
        return PowerLawISAN(self.A.to(**kw), self.B.to(**kw), self.x0.to(**kw), alpha=self.alpha, scales=self.scales.to(**kw))


def power_law_isan(
    vocab_size: int,
    horizon: int,
    hidden_dim: int,
    alpha: float,
    *,
    generator,
    scale: float = 1.0,
    dtype=None,
    device=None,
) -> PowerLawISAN:
    """A dim-d time-varying ISAN whose logit-matrix singular values decay like i^{−α}.

    Construction. The state is d/2 planar blocks, each starting at (1, 0); every A[s, z] rotates
    block k by an angle θ[s, z, k], so a history's state is the stack (cos φ_k, sin φ_k) with φ_k
    the sum of its angles. The readout is B_s = G_s·diag(s), where each column of G_s is a random
    mean-zero unit vector over the V tokens and s holds the planted scales: block k (coordinates
    2k−1, 2k) gets ((2k−1)·2k)^{−α/2}, the geometric mean of i^{−α} over its two indices, all
    multiplied by one constant so that Σ_k s_k² = scale² (then every next-token logit vector has
    expected squared norm scale² over the draw). Rotations commute with the block-constant diag(s),
    so the level-t logit matrix factors as

        L_t = E_t · diag(s) · W_t,     E_t (V^t, d) the unscaled history states,
                                        W_t (d, columns) the unscaled, centred future maps.

    Tokens come in pairs (0, 1), (2, 3), …: the angle of token 2j+1 is that of token 2j plus
    σ[s, k]·π/2, with signs σ from a binary code over the steps (every window of L + 1 steps, with
    L = max(1, ⌈log2(d/2)⌉), holds a step where all blocks agree and, for every pair of blocks, a
    step where they differ); the angles of even tokens (and of the last token when V is odd) are
    uniform random.

    What is guaranteed.

    * Rank: every level logit matrix has rank <= d (Fact C.4).
    * For even V and every level t >= L + 1 (``first_exact_level``), E_tᵀE_t = (V^t/2)·I_d
      exactly: the character sums Σ_h e^{i(±φ_k ± φ_l)} factor over steps, and each paired
      token sum vanishes at a step where the code makes it vanish. Hence
      σ_i(L_t) = √(V^t/2)·σ_i(diag(s) W_t), which lies in √(V^t/2)·[σ_min(W_t), ‖W_t‖]·s_i: the
      spectrum is the planted power law up to the condition number κ(W_t). For odd V the
      unpaired token's term does not cancel, so E_t is only nearly orthogonal (relative
      off-diagonal Gram entries shrink roughly like V^{−1} per separating step).
    * κ(W_t) is not fixed by the construction: its anisotropy averages out over futures longer than
      L + 1 steps, so it is close to 1 when V^{T−t} ≫ d and grows as the column count approaches d.
      ``tests/synth/test_approx.py`` measures the fitted exponent on such levels.

    The planted scales s_i differ from c·i^{−α} (c the normalising constant) by a factor within
    [2^{−α/2}, 2^{α/2}], and a
    least-squares fit of log s_i against log i over i = 1..d returns α·(1 − O(1/d)) (0.966·α for
    d = 16, 0.986·α for d = 32).

    Parameters
    ----------
    vocab_size, horizon : int
        V >= 2, T >= 1.
    hidden_dim : int
        d, even and >= 2 (the state is made of planar blocks).
    alpha : float > 0
        The decay exponent α.
    generator : torch.Generator (CPU) or int
    scale : float > 0
        Root of the expected squared norm of each next-token logit vector.
    dtype, device :
        Of the returned model (float64 on the CPU by default).

    Returns
    -------
    PowerLawISAN
        ``A`` (T, V, d, d), ``B`` (T, V, d), ``x0`` (d,), ``scales`` (d,).

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import all_sequences
    >>> m = power_law_isan(2, 8, 4, alpha=1.0, generator=0)
    >>> m.first_exact_level
    2
    >>> states = m.states(all_sequences(2, 3))[:, -1]          # (8, 4): E_3
    >>> bool(torch.allclose(states.T @ states, 4.0 * torch.eye(4, dtype=torch.float64)))
    True
    >>> round((m.scales[0] / m.scales[2]).item() ** 2, 12)       # ((1·2)/(3·4))^(−α)
    6.0
    """
    V = check_int("vocab_size", vocab_size, minimum=2)
    T = check_int("horizon", horizon, minimum=1)
    d = check_int("hidden_dim", hidden_dim, minimum=2)
    if d % 2:
        raise ValueError(f"hidden_dim must be even (the state is a stack of planar rotation blocks); got {d}")
    alpha = check_real("alpha", alpha, low=0.0, low_open=True)
    scale = check_real("scale", scale, low=0.0, low_open=True)
    dtype = resolve_dtype("dtype", dtype)
    device = check_device("device", device)
    gen = as_generator(generator, torch.device("cpu"))
    nb = d // 2
    kw = {"dtype": torch.float64}
    # 1. Angles: random for even tokens (and an odd last token), +σ·π/2 for their partners.
    theta = 2 * math.pi * torch.rand(T, V, nb, generator=gen, **kw)  # (T, V, nb)
    signs = _code_signs(T, nb)  # (T, nb)
    theta[:, 1::2] = theta[:, 0 : 2 * (V // 2) : 2] + (math.pi / 2) * signs.unsqueeze(1)
    # 2. Block-diagonal rotations.
    cos, sin = theta.cos(), theta.sin()  # (T, V, nb)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (T, V, nb, 2, 2)
    A = torch.zeros(T, V, nb, 2, nb, 2, **kw)
    idx = torch.arange(nb)
    A[:, :, idx, :, idx, :] = rot.permute(2, 0, 1, 3, 4)  # (nb, T, V, 2, 2) → block k on the diagonal
    A = A.reshape(T, V, d, d)  # (T, V, d, d)
    # 3. Planted scales, equal within a block, normalised to Σ_k s_k² = scale².
    k = torch.arange(1, nb + 1, **kw)
    block_scales = ((2 * k - 1) * (2 * k)) ** (-alpha / 2)  # (nb,)
    block_scales = scale * block_scales / block_scales.norm()
    scales = block_scales.repeat_interleave(2)  # (d,)
    # 4. Readout: centred unit columns, then scaled.
    G = torch.randn(T, V, d, generator=gen, **kw)
    G = G - G.mean(dim=1, keepdim=True)
    G = G / G.norm(dim=1, keepdim=True)  # each (s, ·, i) column: mean 0, norm 1
    B = G * scales  # (T, V, d)
    x0 = torch.zeros(d, **kw)
    x0[0::2] = 1.0
    out = {"dtype": dtype, "device": device}
    return PowerLawISAN(A.to(**out), B.to(**out), x0.to(**out), alpha=alpha, scales=scales)
