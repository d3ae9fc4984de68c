"""The spectral toolkit of paper A, §3.1–3.2: power-law fits, KL to rank r, principal angles.

* :func:`fit_power_law` — the weighted regression of Appendix A.1.1 that gives the exponent α of
  σ_i ≈ C·i^{−α} (Figures 2, 6, 8).
* :func:`avg_kl`, :func:`avg_kl_to_rank`, :func:`rank_one_baseline_kl` — Definition 3.1 and the
  curves of Figure 1a / Appendix A.1.3.
* :func:`principal_angles`, :func:`random_subspace_angles` — Figure 4 and its random baseline
  (§3.2, Appendix A.2).

Matrices are (n, m·k) logit matrices in the future-major layout of :func:`logit_matrix` (the k
columns of future j are ``j*k … j*k + k − 1``); all arithmetic is float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from logitrank._validation import as_rng, check_int

from ._gram_spectrum import Spectrum, _canonical_signs

__all__ = [
    "PowerLawFit",
    "avg_kl",
    "avg_kl_to_rank",
    "fit_power_law",
    "principal_angles",
    "random_subspace_angles",
    "rank_one_baseline_kl",
]

_INDEXINGS = ("paper", "original")
_SCRATCH = 2**27  # bytes of (n, c·k) float64 blocks held at once by the KL routines


# -- power-law fit (Appendix A.1.1) ---------------------------------------------------------------
@dataclass(frozen=True)
class PowerLawFit:
    """The result of :func:`fit_power_law`.

    The model is log σ_i = log_scale − alpha·log(i/n) + edge·log((n − i)/n).

    Attributes
    ----------
    alpha : float
        The power-law exponent (σ_i ∝ i^{−α} for i ≪ n).
    edge : float
        Coefficient of log((n − i)/n), which absorbs the drop of σ_i as i nears n.
    log_scale : float
        The intercept.
    n : int
        The number of singular values given.
    index : (p,) float64 array
        The i of the fitted points in the regression.
    position : (p,) int array
        Where those points sit in the given spectrum (1-based): index + 1 for the "paper" indexing.
    observed : (p,) float64 array
        Their singular values.
    fitted : (p,) float64 array
        The fitted curve exp(log_scale − alpha·log(i/n) + edge·log((n − i)/n)).
    r_squared : float
        Weighted coefficient of determination of the fit in log space (1 is a perfect fit).
    """

    alpha: float
    edge: float
    log_scale: float
    n: int
    index: np.ndarray
    position: np.ndarray
    observed: np.ndarray
    fitted: np.ndarray
    r_squared: float


def _as_float64(name: str, values, ndim: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers; {err}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite; got {int((~np.isfinite(arr)).sum())} non-finite entries")
    return arr


def fit_power_law(singular_values, *, indexing: str = "paper") -> PowerLawFit:
    """The power-law exponent α of a spectrum, by the weighted regression of paper A, Appendix A.1.1.

    Steps (as in the appendix):

    1. Drop the largest singular value. With ``indexing="paper"`` the remaining n − 1 values are
       renumbered σ_1 ≥ … ≥ σ_{n−1}, i = 1 … n−1, as the appendix states.
    2. Regress log σ_i on the covariates log(i/n) and log((n − i)/n) with an intercept.
    3. Weight point i by 1/i (weighted least squares); α is minus the first slope.

    ``indexing="original"`` keeps each value's own index i = 2 … n−1 instead (the smallest value is
    then left out, since log((n − n)/n) is undefined). The renumbering of step 1 shifts every index
    by one, and with weights 1/i that shift biases α low on an exact power law σ_i = C·i^{−α}
    (α = 0.55, n = 1000 gives 0.488); the original indexing recovers it exactly.

    Parameters
    ----------
    singular_values : (n,) array or tensor
        All min(rows, columns) singular values of a matrix, in non-increasing order, positive.
    indexing : {"paper", "original"}

    Returns
    -------
    PowerLawFit

    Examples
    --------
    >>> import numpy as np
    >>> i = np.arange(1, 1000)
    >>> s = np.r_[10.0, 3 * i ** -0.6 * ((1000 - i) / 1000) ** 0.1]   # planted, largest first
    >>> fit = fit_power_law(s)
    >>> round(fit.alpha, 6), round(fit.edge, 6), round(fit.r_squared, 6)
    (0.6, 0.1, 1.0)
    """
    s = _as_float64("singular_values", singular_values, 1)
    if indexing not in _INDEXINGS:
        raise ValueError(f"indexing must be one of {_INDEXINGS}; got {indexing!r}")
    n = s.shape[0]
    if n < 5:
        raise ValueError(f"singular_values must hold at least 5 values for a 3-parameter fit; got {n}")
    if (np.diff(s) > 0).any():
        raise ValueError("singular_values must be in non-increasing order (sort them descending)")
    # 1. Drop the largest; choose the indices.
    if indexing == "paper":
        y_vals, idx = s[1:], np.arange(1, n, dtype=np.float64)  # σ_1 … σ_{n−1}
    else:
        y_vals, idx = s[1 : n - 1], np.arange(2, n, dtype=np.float64)  # own indices 2 … n−1
    if (s < 0).any():
        raise ValueError(f"singular_values must be >= 0 (singular values are never negative); got "
                         f"{int((s < 0).sum())} negative values, the smallest {float(s.min())}")
    if len(idx) <= 3:
        raise ValueError(f"singular_values must leave at least 4 fitted points for the 3-parameter fit with "
                         f"indexing={indexing!r} (as many points as parameters fit exactly, R² = 1 says nothing); "
                         f"got {n} values, {len(idx)} points")
    if (y_vals <= 0).any():
        zeros = int((y_vals <= 0).sum())
        raise ValueError(
            f"singular_values must be positive (log σ is fitted); got {zeros} zero values — the "
            "matrix is rank deficient, so no power law describes its tail"
        )
    # 2. Design matrix with an intercept: (p, 3).
    X = np.column_stack([np.ones_like(idx), np.log(idx / n), np.log((n - idx) / n)])
    y = np.log(y_vals)
    # 3. Weighted least squares with weights 1/i: scale rows by sqrt(w).
    sw = np.sqrt(1.0 / idx)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    pred = X @ coef
    w = 1.0 / idx
    ybar = np.sum(w * y) / np.sum(w)
    ss_tot = float(np.sum(w * (y - ybar) ** 2))
    ss_res = float(np.sum(w * (y - pred) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerLawFit(
        alpha=float(-coef[1]), edge=float(coef[2]), log_scale=float(coef[0]), n=n,
        index=idx, position=np.arange(2, 2 + len(idx)), observed=y_vals, fitted=np.exp(pred), r_squared=r2,
    )


# -- average KL (Definition 3.1) -------------------------------------------------------------------
def _check_matrix(name: str, L) -> torch.Tensor:
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
    L, A = _check_matrix("L", L), _check_matrix("A", A)
    if L.shape != A.shape:
        raise ValueError(f"A must have the shape of L {tuple(L.shape)}; got {tuple(A.shape)}")
    k = _check_k(k, L)
    n, m = L.shape[0], L.shape[1] // k
    if n * m == 0:
        raise ValueError(f"L has no (h, f) pairs (shape {tuple(L.shape)}); the average is undefined")
    return float(_kl_rows(L, A, k)) / (n * m)


def _left_vectors(L: torch.Tensor, r: int) -> torch.Tensor:
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
    L = _check_matrix("L", L)
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
    U = _left_vectors(L, R)  # (n, R)
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
    L = _check_matrix("L", L)
    k = _check_k(k, L)
    base = _check_matrix("future_logits", future_logits.reshape(1, -1) if isinstance(future_logits, torch.Tensor) else future_logits)
    if base.shape[1] != L.shape[1]:
        raise ValueError(f"future_logits must have m·k = {L.shape[1]} entries like the columns of L; got {base.shape[1]}")
    return avg_kl(L, base.expand_as(L), k)


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
