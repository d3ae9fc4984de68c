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
