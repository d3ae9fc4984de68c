"""Approximately low-rank models: power-law spectra, planted perturbations, and an ε_avg estimate.

* :func:`power_law_isan` — a dim-d ISAN whose level logit matrices have singular values that
  follow planted scales s_i ≍ i^{−α} (the setting σ_i ≍ C·i^{−α} of paper A, Fact A.1).
* :func:`perturbed` — any model plus a deterministic, high-rank logit perturbation of known size.
* :func:`approx_rank_error` — a sampled estimate of ε_avg at rank r, as defined in the
  approximate learner of paper B (restated in ``docs/approx-learner.md``, "Setting").
"""

from __future__ import annotations

import math

import numpy as np
import torch

from logitrank._validation import as_generator, check_device, check_int, check_real, resolve_dtype

from ._isan import TimeVaryingISAN
from ._protocol import LanguageModel, LogitModel

__all__ = ["PerturbedModel", "PowerLawISAN", "approx_rank_error", "perturbed", "power_law_isan"]


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


# -- planted perturbations ----------------------------------------------------------------------
def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic): a fixed bijective scramble."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _sign_patterns(prefixes: np.ndarray, salt: int, vocab_size: int) -> np.ndarray:
    """(B, t) int tokens → (B, V) float patterns with ⌊V/2⌋ entries +1, ⌊V/2⌋ entries −1 (and one 0 when
    V is odd), a deterministic pseudo-random function of (salt, the whole prefix)."""
    B, t = prefixes.shape
    h = np.full(B, salt, dtype=np.uint64)
    h = _mix64(h ^ np.uint64(t))  # the length is hashed too, so () and (0,) differ
    for s in range(t):
        h = _mix64(h ^ (prefixes[:, s].astype(np.uint64) + np.uint64(1)))
    keys = _mix64(h[:, None] ^ _mix64(np.arange(vocab_size, dtype=np.uint64))[None, :])  # (B, V)
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")  # (B, V)
    half = vocab_size // 2
    return np.where(rank < half, 1.0, np.where(rank >= vocab_size - half, -1.0, 0.0))


class PerturbedModel(LogitModel):
    """A model whose mean-centred logits are those of ``base`` plus eps·ξ(prefix); see :func:`perturbed`.

    Attributes
    ----------
    base : LanguageModel
    eps : float
    salt : int
        The 63-bit key of the hash, drawn from the generator.
    """

    def __init__(self, base: LanguageModel, eps: float, salt: int):
        self.base, self.eps, self.salt = base, eps, salt
        self.vocab_size, self.horizon = base.vocab_size, base.horizon
        self.device = torch.device(getattr(base, "device", "cpu"))
        self.dtype = getattr(base, "dtype", torch.float64)

    def __repr__(self) -> str:
        return f"PerturbedModel({self.base!r}, eps={self.eps})"

    def perturbation(self, prefixes) -> torch.Tensor:
        """eps·ξ(prefix): (B, t) LongTensor → (B, V), entries in {−eps, 0, eps}, each row summing to 0."""
        p = self._check_prefixes(prefixes)
        return self._perturbation(p)

    def _perturbation(self, prefixes: torch.Tensor) -> torch.Tensor:
        xi = _sign_patterns(prefixes.cpu().numpy(), self.salt, self.vocab_size)  # (B, V)
        return self.eps * torch.from_numpy(xi).to(device=self.device, dtype=self.dtype)

    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        return self.base.logits(prefixes) + self._perturbation(prefixes)  # (B, V), still centred


def perturbed(model: LanguageModel, eps: float, *, generator) -> PerturbedModel:
    """``model`` with a high-rank logit perturbation of exactly known size (for approximate-rank tests).

    The perturbed model's mean-centred logits are L(h) + eps·ξ(h), where ξ(h) ∈ {−1, 0, 1}^V has
    ⌊V/2⌋ entries +1 and ⌊V/2⌋ entries −1 (plus one 0 when V is odd), placed by a SplitMix64 hash
    of (a salt drawn from ``generator``, len(h), every token of h). So, for every prefix h:

    * ξ(h) sums to zero, so the perturbation survives centring unchanged;
    * max-abs entry eps, mean absolute entry eps·2⌊V/2⌋/V, root-mean-square entry
      eps·√(2⌊V/2⌋/V), ℓ2 row norm eps·√(2⌊V/2⌋);
    * distinct prefixes get independent-looking patterns, so the perturbation's logit matrices
      have full rank generically: a rank-d base model becomes approximately rank d with error set
      by eps. In particular the best rank-d approximation of any sampled logit matrix of the
      perturbed model has RMS entry error <= eps·√(2⌊V/2⌋/V) when the base has rank <= d.

    The same salt always gives the same ξ, so queries are repeatable. Sampling and scoring use
    :class:`LogitModel`'s generic O(T²) paths.

    Parameters
    ----------
    model : LanguageModel
        The base (any object following the protocol; its ``logits`` must be mean-centred).
    eps : float >= 0
    generator : torch.Generator (CPU) or int
        Draws the salt.

    Returns
    -------
    PerturbedModel

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> base = random_isan(4, 5, 2, generator=0)
    >>> m = perturbed(base, 0.1, generator=1)
    >>> diff = m.logits([[0, 3]]) - base.logits([[0, 3]])
    >>> sorted(round(v, 12) for v in diff[0].tolist())
    [-0.1, -0.1, 0.1, 0.1]
    """
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must follow the synth.LanguageModel protocol; got {type(model).__name__}")
    eps = check_real("eps", eps, low=0.0)
    gen = as_generator(generator, torch.device("cpu"))
    salt = int(torch.randint(0, 2**63 - 1, (1,), generator=gen))
    return PerturbedModel(model, eps, salt)


# -- the ε_avg estimate -------------------------------------------------------------------------
def approx_rank_error(
    model: LanguageModel,
    rank: int,
    *,
    n_histories: int = 64,
    n_futures: int = 64,
    generator,
) -> torch.Tensor:
    """Sampled estimate of the per-level ε_avg at rank r (approximate-learner spec, "Setting").

    For each level s = t + 1 (histories of length t = 0 … T−1) it builds one sampled logit matrix
    and reports the average absolute entry error of its best rank-r approximation:

    1. Histories (rows). t = 0: the empty history (level 1 has only it). t >= 1: the first t − 1
       tokens of a sample of ``model`` followed by a uniform token; ``n_histories`` rows.
    2. Futures. ``n_futures`` strings f: for each, a fresh sample y of the model and a length k
       uniform on {0, …, T − t − 1}; f = y_{t+1 : t+k}, the k tokens that follow position t in y
       (a continuation of the model). Every history is paired with every future.
    3. Scored tokens. All V tokens of each future are kept, so the average over columns is the
       average over a uniform scored token. The matrix is (n_histories, n_futures·V), entry
       [i, j·V + z] = L(h_i ∘ f_j)[z], the mean-centred logit, from ``model.logits`` calls.
    4. Error. L_r = the rank-r truncated SVD of that matrix (float64); the entry is
       mean |L − L_r| over all its entries (0 when r >= min(rows, columns)).

    This is an estimate in two ways: the matrix is a sample of the restatement's average, and the
    truncated SVD minimises the squared (not the absolute) error, so the value is an upper bound on
    the best rank-r average absolute error *of the sampled matrix* and is always <= its root-mean-square
    counterpart. The restatement's ε_avg at rank r is the maximum over levels, ``out.max()``. One batch of
    ``n_histories`` samples and one of ``n_futures`` samples serve every level.

    Parameters
    ----------
    model : LanguageModel with a finite horizon T
    rank : int >= 0
    n_histories, n_futures : int >= 1
    generator : torch.Generator on the model's device, or an int seed

    Returns
    -------
    (T,) float64 tensor
        Entry t is the estimate for histories of length t.

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 5, 2, generator=0)
    >>> bool(approx_rank_error(m, 2, generator=0).max() < 1e-12)      # exact rank 2
    True
    >>> bool(approx_rank_error(perturbed(m, 0.1, generator=0), 2, generator=0).max() > 1e-3)
    True
    """
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must follow the synth.LanguageModel protocol; got {type(model).__name__}")
    T = model.horizon
    if T is None:
        raise ValueError("approx_rank_error needs a model with a finite horizon; got horizon=None")
    rank = check_int("rank", rank, minimum=0)
    n_h = check_int("n_histories", n_histories, minimum=1)
    n_f = check_int("n_futures", n_futures, minimum=1)
    V = model.vocab_size
    device = torch.device(getattr(model, "device", "cpu"))
    gen = as_generator(generator, device)
    # Shared draws: history samples, their uniform last tokens, future samples and future lengths.
    hist = model.sample(n_h, generator=gen)  # (n_h, T)
    last = torch.randint(0, V, (n_h, T), generator=gen, device=device)  # (n_h, T)
    fut = model.sample(n_f, generator=gen)  # (n_f, T)
    u = torch.rand(n_f, T, generator=gen, device=device, dtype=torch.float64)  # for the lengths
    out = torch.zeros(T, dtype=torch.float64)
    for t in range(T):
        # 1. Histories of length t.
        if t == 0:
            H = torch.zeros(1, 0, dtype=torch.long, device=device)
        else:
            H = torch.cat([hist[:, : t - 1], last[:, t - 1 : t]], dim=1)  # (n_h, t)
        # 2. Futures: lengths uniform on {0, …, T−t−1}.
        lengths = (u[:, t] * (T - t)).long().clamp(max=T - t - 1)  # (n_f,)
        L = torch.empty(H.shape[0], n_f, V, dtype=torch.float64, device=device)
        # 3. One model.logits call per future length: (n_h·m, t + k) prefixes.
        for k in lengths.unique().tolist():
            cols = (lengths == k).nonzero().squeeze(1)  # (m,)
            F = fut[cols, t : t + k]  # (m, k)
            m = cols.numel()
            prefixes = torch.cat(
                [H.unsqueeze(1).expand(-1, m, -1), F.unsqueeze(0).expand(H.shape[0], -1, -1)], dim=2
            ).reshape(H.shape[0] * m, t + k)  # (n_h·m, t+k), history-major
            L[:, cols] = model.logits(prefixes).to(torch.float64).reshape(H.shape[0], m, V)
        L = L.reshape(H.shape[0], n_f * V)  # (n_h, n_f·V), future-major columns
        # 4. Truncated SVD error.
        if rank < min(L.shape):
            U_, S_, Vh = torch.linalg.svd(L, full_matrices=False)
            L_r = (U_[:, :rank] * S_[:rank]) @ Vh[:rank]  # (n_h, n_f·V)
            out[t] = (L - L_r).abs().mean().cpu()
    return out
