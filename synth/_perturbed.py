"""Any model plus a deterministic, high-rank logit perturbation of known size (approximately low
logit rank by construction)."""

from __future__ import annotations

import numpy as np
import torch

from logitrank._validation import as_generator, check_real

from ._protocol import LanguageModel, LogitModel

__all__ = ["PerturbedModel", "perturbed"]


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
