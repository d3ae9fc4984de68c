"""Principal angles between logit-matrix subspaces and their random baseline (paper A, §3.2, Figure 4,
Appendix A.2)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from logitrank._validation import as_rng, check_int

from ._gram_spectrum import Spectrum
from ._kl_rank import check_logit_matrix as _check_matrix
from ._kl_rank import left_singular_vectors as _left_vectors

__all__ = ["principal_angles", "random_subspace_angles"]


# -- principal angles (§3.2, Appendix A.2) ---------------------------------------------------------
def principal_angles(L1, L2, r: int) -> np.ndarray:
    """Principal angles between the column spaces of the best rank-r approximations of L1 and L2.

    The column space of the best rank-r approximation of L is spanned by its top-r left singular
    vectors, so the angles are those between two r-dimensional subspaces of R^n (one coordinate
    per history), computed by :func:`scipy.linalg.subspace_angles` (paper A, §3.2, Figure 4).

    Parameters
    ----------
    L1, L2 : (n, M1) and (n, M2) tensors, or :class:`Spectrum` objects with at least r left vectors
        Same rows (histories); the columns may differ (e.g. real and nonsense futures).
    r : int, 1 <= r <= the numerical rank of each matrix
        (σ_r > max(n, M)·eps·σ_1; for a Spectrum from the Gram path, σ_r > sqrt(eps·max(n, M))·σ_1):
        beyond its rank a matrix's top-r column space is not determined and the angles would be arbitrary.

    Returns
    -------
    (r,) float64 array of angles in radians, increasing: θ_1 ≤ … ≤ θ_r (cosines near 1 = overlap).

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(8, 2, generator=g, dtype=torch.float64)
    >>> L1 = X @ torch.randn(2, 10, generator=g, dtype=torch.float64)
    >>> L2 = X @ torch.randn(2, 30, generator=g, dtype=torch.float64)   # same column space
    >>> bool(principal_angles(L1, L2, 2).max() < 1e-6)
    True
    """
    rows = [X.shape[0] if isinstance(X, Spectrum) else _check_matrix(name, X).shape[0] for name, X in (("L1", L1), ("L2", L2))]
    if rows[0] != rows[1]:
        raise ValueError(f"L1 and L2 must have the same number of rows (histories); got {rows[0]} and {rows[1]}")
    U1 = _basis("L1", L1, r)
    U2 = _basis("L2", L2, r)
    return np.sort(scipy.linalg.subspace_angles(U1, U2))


def _basis(name: str, L, r) -> np.ndarray:
    """Top-r left singular vectors of L as (n, r) numpy; refuses r above L's numerical rank."""
    if isinstance(L, Spectrum):
        if L.left_vectors is None or L.left_vectors.shape[1] < check_int("r", r, minimum=1):
            have = 0 if L.left_vectors is None else L.left_vectors.shape[1]
            raise ValueError(f"{name} is a Spectrum with {have} left vectors; r={r} needs at least r (pass rank=r)")
        # a Spectrum may come from the Gram path, whose small singular values carry ~sqrt(eps) noise
        _check_rank(name, L.singular_values, r, rtol=float(np.sqrt(np.finfo(np.float64).eps * max(L.shape))))
        return L.left_vectors[:, :r].cpu().numpy()
    L = _check_matrix(name, L)
    r = check_int("r", r, minimum=1, maximum=min(L.shape))
    L64 = L.to(torch.float64)
    _check_rank(name, torch.linalg.svdvals(L64), r, rtol=max(L.shape) * float(np.finfo(np.float64).eps))
    return _left_vectors(L64, r).cpu().numpy()


def _check_rank(name: str, singular_values: torch.Tensor, r: int, *, rtol: float) -> None:
    """Raise when r exceeds the numerical rank (σ_i > rtol·σ_1) of a matrix: its top-r space is then arbitrary."""
    s = singular_values.to(torch.float64)
    rank = int((s > rtol * s.max()).sum()) if s.numel() and float(s.max()) > 0 else 0
    if r > rank:
        raise ValueError(f"r must be <= the numerical rank of {name}, {rank} (singular values above {rtol:.1e}·σ_1); "
                         f"got r={r}: directions beyond the rank are arbitrary, so their angles mean nothing")


def random_subspace_angles(n: int, r: int, *, rng) -> np.ndarray:
    """Principal angles between two independent uniformly random r-dimensional subspaces of R^n.

    The dashed baseline of paper A, Figure 4: each subspace is the span of an (n, r) Gaussian
    matrix (Haar distributed), drawn from ``rng`` (a numpy Generator or seed).

    Returns
    -------
    (r,) float64 array of angles in radians, increasing.

    Examples
    --------
    >>> a = random_subspace_angles(1000, 5, rng=0)
    >>> bool(a.min() > 1.3)          # nearly orthogonal in high dimension
    True
    """
    n = check_int("n", n, minimum=1)
    r = check_int("r", r, minimum=1, maximum=n)
    gen = as_rng(rng)
    A = gen.standard_normal((n, r))
    B = gen.standard_normal((n, r))
    return np.sort(scipy.linalg.subspace_angles(A, B))
