"""Average KL to a rank-r logit matrix (paper A, Definition 3.1; Figure 1a and Appendix A.1.3).

Matrices are (n, m·k) logit matrices in the future-major layout of :func:`logit_matrix` (the k
columns of future j are ``j*k … j*k + k − 1``); all arithmetic is float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from logitrank._validation import check_int

from ._gram_spectrum import _canonical_signs

__all__ = ["avg_kl", "avg_kl_to_rank", "check_logit_matrix", "left_singular_vectors", "rank_one_baseline_kl"]


_SCRATCH = 2**27  # bytes of (n, c·k) float64 blocks held at once by the KL routines


# -- average KL (Definition 3.1) -------------------------------------------------------------------
def check_logit_matrix(name: str, L) -> torch.Tensor:
    if not isinstance(L, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(L).__name__}")
    if not L.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating tensor; got dtype {L.dtype}")
    if L.ndim != 2:
        raise ValueError(f"{name} must have shape (n, m*k); got shape {tuple(L.shape)}")
    if not torch.isfinite(L).all():
        raise ValueError(f"{name} must be finite; got {int((~torch.isfinite(L)).sum())} non-finite entries")
    return L.to(torch.float64)


def _check_k(k, L: torch.Tensor) -> int:
    k = check_int("k", k, minimum=1)
    if L.shape[1] % k:
        raise ValueError(f"k must divide the number of columns of L ({L.shape[1]}) — k columns per future; got k={k}")
    return k


def _kl_rows(L: torch.Tensor, A: torch.Tensor, k: int) -> torch.Tensor:
    """Σ over (h, f) of KL(softmax L_{h,f} ‖ softmax A_{h,f}) for a (n, c·k) block pair; 0-dim."""
    lp = torch.log_softmax(L.reshape(L.shape[0], -1, k), dim=-1)  # (n, c, k)
    lq = torch.log_softmax(A.reshape(A.shape[0], -1, k), dim=-1)  # (n, c, k)
    return (lp.exp() * (lp - lq)).sum()


def avg_kl(L: torch.Tensor, A: torch.Tensor, k: int) -> float:
    """D^avg_KL(L, A) of paper A, Definition 3.1: the mean over (h, f) of KL(softmax L_{h,f} ‖ softmax A_{h,f}).

    The truth L is the first argument of each KL. Each (h, f) block holds the k columns of
    future f, so with L = L_{M,k} the distributions live on the k kept tokens (Appendix A.1.3).

    Parameters
    ----------
    L, A : (n, m·k) tensors
    k : int
        Columns per future.

    Returns
    -------
    float (nats)

    Examples
    --------
    >>> import torch
    >>> L = torch.tensor([[0.0, 0.0]])
    >>> A = torch.tensor([[0.0, 1.0]])
    >>> round(avg_kl(L, A, 2), 6)     # KL(½,½ ‖ σ(−1), σ(1))
    0.120115
    """
    L, A = check_logit_matrix("L", L), check_logit_matrix("A", A)
    if L.shape != A.shape:
        raise ValueError(f"A must have the shape of L {tuple(L.shape)}; got {tuple(A.shape)}")
    k = _check_k(k, L)
    n, m = L.shape[0], L.shape[1] // k
    if n * m == 0:
        raise ValueError(f"L has no (h, f) pairs (shape {tuple(L.shape)}); the average is undefined")
    return float(_kl_rows(L, A, k)) / (n * m)


def left_singular_vectors(L: torch.Tensor, r: int) -> torch.Tensor:
    """Top-r left singular vectors of a float64 (n, M) matrix, canonical signs: (n, r)."""
    if L.shape[0] <= L.shape[1]:
        _, evecs = torch.linalg.eigh(L @ L.T)  # ascending eigenvalues of the (n, n) Gram
        U = evecs.flip(1)[:, :r]
    else:
        U = torch.linalg.svd(L, full_matrices=False).U[:, :r]
    return _canonical_signs(U)


def avg_kl_to_rank(L: torch.Tensor, r, k: int):
    """Average KL (Definition 3.1) from L to its best rank-r approximation (paper A, Figure 1a).

    The best rank-r approximation in Frobenius norm is the projection U_r U_rᵀ L onto the top-r
    left singular vectors (Eckart–Young); it is formed one block of futures at a time. Paper A
    truncated ``torch.svd_lowrank`` instead (Appendix A.1.3); this uses an exact decomposition.

    Parameters
    ----------
    L : (n, m·k) tensor
    r : int or sequence of int
        Rank(s), 0 <= r <= min(n, m·k).
    k : int
        Columns per future.

    Returns
    -------
    float for an int ``r``; (len(r),) float64 array for a sequence.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> L = torch.randn(6, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 12, generator=g, dtype=torch.float64)
    >>> abs(avg_kl_to_rank(L, 2, 3)) < 1e-14     # rank 2 is exact (up to rounding)
    True
    >>> kls = avg_kl_to_rank(L, [0, 1, 2], 3)
    >>> bool(kls[0] > kls[1] > kls[2])
    True
    """
    L = check_logit_matrix("L", L)
    k = _check_k(k, L)
    scalar = not isinstance(r, (Sequence, np.ndarray))
    limit = min(L.shape)
    ranks = [check_int("r", r, minimum=0, maximum=limit)] if scalar else [
        check_int(f"r[{j}]", v, minimum=0, maximum=limit) for j, v in enumerate(r)
    ]
    n, m = L.shape[0], L.shape[1] // k
    if n * m == 0:
        raise ValueError(f"L has no (h, f) pairs (shape {tuple(L.shape)}); the average is undefined")
    R = max(ranks, default=0)
    U = left_singular_vectors(L, R)  # (n, R)
    totals = np.zeros(len(ranks))
    chunk = max(1, _SCRATCH // (8 * 3 * n * k))  # futures per block
    for start in range(0, m, chunk):
        Lb = L[:, start * k : (start + chunk) * k]  # (n, c*k)
        P = U.T @ Lb  # (R, c*k): coordinates in the top-R left singular basis
        for j, rr in enumerate(ranks):
            totals[j] += float(_kl_rows(Lb, U[:, :rr] @ P[:rr], k))
    out = totals / (n * m)
    return float(out[0]) if scalar else out


def rank_one_baseline_kl(L: torch.Tensor, future_logits: torch.Tensor, k: int) -> float:
    """Average KL of the rank-1 baseline of paper A, Appendix A.1.3.

    Every row h is approximated by the same row: the logits of each future alone, L_M[· | f] at
    the kept columns. Get it as ``logit_matrix(model, [()], F, columns=cols)[0]`` with the columns
    of L. (It is a rank-1 matrix, generally not the best rank-1 approximation.)

    Parameters
    ----------
    L : (n, m·k) tensor
    future_logits : (m·k,) tensor
        L_M[z | f] for the columns (f, z) of L, same layout.
    k : int

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> row = torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    >>> rank_one_baseline_kl(torch.stack([row, row]), row, 2)
    0.0
    """
    L = check_logit_matrix("L", L)
    k = _check_k(k, L)
    base = check_logit_matrix("future_logits", future_logits.reshape(1, -1) if isinstance(future_logits, torch.Tensor) else future_logits)
    if base.shape[1] != L.shape[1]:
        raise ValueError(f"future_logits must have m·k = {L.shape[1]} entries like the columns of L; got {base.shape[1]}")
    return avg_kl(L, base.expand_as(L), k)
