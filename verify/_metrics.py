"""Distances between distributions over sequences (TV, KL)."""

from __future__ import annotations

import torch

__all__ = ["tv_distance", "kl_divergence"]


def _check_pair(p, q, atol: float) -> tuple[torch.Tensor, torch.Tensor]:
    for name, x in (("p", p), ("q", q)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of probabilities; got {type(x).__name__}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating tensor; got dtype {x.dtype}")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape; got {tuple(p.shape)} and {tuple(q.shape)}")
    if p.device != q.device:
        raise ValueError(f"p and q must be on one device; got {p.device} and {q.device}")
    p64, q64 = p.to(torch.float64), q.to(torch.float64)
    for name, x in (("p", p64), ("q", q64)):
        if not torch.isfinite(x).all() or (x < -atol).any():
            raise ValueError(f"{name} must hold finite non-negative probabilities")
        total = float(x.sum())
        if abs(total - 1.0) > atol * max(1, x.numel()) ** 0.5 + 1e-9:
            raise ValueError(f"{name} must sum to 1 (a distribution); got sum {total:.12g}")
    return p64, q64


def tv_distance(p: torch.Tensor, q: torch.Tensor, *, atol: float = 1e-6) -> float:
    """Total variation distance ½ Σ |p − q| between two distributions on the same support.

    Parameters
    ----------
    p, q : (N,) tensors of probabilities (e.g. from ``TimeVaryingISAN.distribution()``)
    atol : float
        Slack allowed in the sum-to-one and non-negativity checks (float rounding).

    Returns
    -------
    float in [0, 1], computed in float64.

    Examples
    --------
    >>> import torch
    >>> tv_distance(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))
    0.5
    """
    p64, q64 = _check_pair(p, q, atol)
    return float(0.5 * (p64 - q64).abs().sum())


def kl_divergence(p: torch.Tensor, q: torch.Tensor, *, atol: float = 1e-6) -> float:
    """KL(p ‖ q) = Σ p log(p / q) in nats, float64; +inf when q = 0 where p > 0.

    Examples
    --------
    >>> import torch
    >>> kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]))
    0.0
    """
    p64, q64 = _check_pair(p, q, atol)
    mask = p64 > 0
    if (q64[mask] <= 0).any():
        return float("inf")
    return float((p64[mask] * (p64[mask].log() - q64[mask].log())).sum())


def tv_monte_carlo(p_model, q_model, n: int, *, generator, confidence: float = 0.99) -> tuple[float, float]:
    """Monte-Carlo estimate of TV(P, Q) for models too long to enumerate, with a confidence half-width.

    Uses TV(P, Q) = E_{x~P}[(1 − Q(x)/P(x))_+]: each sample of P gives a value in [0, 1], so
    Hoeffding's inequality bounds the error of the mean of n samples by sqrt(ln(2/α) / (2n)) with
    probability 1 − α, α = 1 − ``confidence``.

    Parameters
    ----------
    p_model, q_model : LanguageModel with the same vocabulary and horizon
    n : int, number of samples of P
    generator : torch.Generator or int, for the samples of P
    confidence : float in (0, 1)

    Returns
    -------
    (estimate, half_width) : floats; TV lies in [estimate ± half_width] with the stated confidence.

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 4, 2, generator=0)
    >>> est, hw = tv_monte_carlo(m, m, 1000, generator=0)
    >>> est, round(hw, 3)
    (0.0, 0.051)
    """
    import math

    if p_model.vocab_size != q_model.vocab_size or p_model.horizon != q_model.horizon:
        raise ValueError(
            f"p_model and q_model must share vocabulary and horizon; got (V={p_model.vocab_size}, "
            f"T={p_model.horizon}) and (V={q_model.vocab_size}, T={q_model.horizon})"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence}")
    seqs = p_model.sample(n, generator=generator)  # (n, T)
    log_ratio = q_model.log_prob(seqs).double().cpu() - p_model.log_prob(seqs).double().cpu()  # (n,)
    values = (1 - log_ratio.clamp(max=50).exp()).clamp(min=0)  # (n,) in [0, 1]
    half_width = math.sqrt(math.log(2 / (1 - confidence)) / (2 * n))
    return float(values.mean()), half_width
