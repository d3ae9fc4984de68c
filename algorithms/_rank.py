"""Numerical rank with a scale-aware tolerance (used wherever an algorithm decides a rank)."""

from __future__ import annotations

import torch

from logitrank._validation import check_real

__all__ = ["default_rank_tol", "numerical_rank"]


def default_rank_tol(singular_values: torch.Tensor, shape: tuple[int, int]) -> float:
    """eps(dtype) · max(m, n) · σ_max — the LAPACK/NumPy convention for an exact-rank decision.

    Singular values below it are indistinguishable from rounding error of a matrix that size.
    """
    if singular_values.numel() == 0:
        return 0.0
    eps = torch.finfo(singular_values.dtype).eps
    return float(eps * max(shape) * singular_values.max())


def numerical_rank(matrix: torch.Tensor, *, tol: float | None = None, rtol: float | None = None) -> int:
    """Number of singular values of a (m, n) matrix above the tolerance.

    Parameters
    ----------
    matrix : (m, n) tensor
        Converted to float64 before the SVD (rank decisions are made in float64).
    tol : float, optional
        Absolute threshold. Default :func:`default_rank_tol`.
    rtol : float, optional
        Relative threshold: singular values below ``rtol * σ_max`` are dropped. Use it when the
        entries carry errors well above float rounding (e.g. a noisy oracle).

    Examples
    --------
    >>> import torch
    >>> numerical_rank(torch.outer(torch.arange(1., 4.), torch.arange(1., 5.)))
    1
    """
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"matrix must be a (m, n) torch.Tensor; got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise ValueError(f"matrix must have shape (m, n); got shape {tuple(matrix.shape)}")
    if tol is not None and rtol is not None:
        raise ValueError("pass at most one of tol and rtol")
    if tol is not None:
        tol = check_real("tol", tol, low=0.0)
    if rtol is not None:
        rtol = check_real("rtol", rtol, low=0.0)
    if not torch.isfinite(matrix).all():
        raise ValueError(f"matrix must be finite; got {int((~torch.isfinite(matrix)).sum())} non-finite entries")
    if matrix.numel() == 0:
        return 0
    s = torch.linalg.svdvals(matrix.to(torch.float64))
    if rtol is not None:
        threshold = float(rtol) * float(s.max())
    elif tol is not None:
        threshold = float(tol)
    else:
        threshold = default_rank_tol(s, tuple(matrix.shape))
    return int((s > threshold).sum())
