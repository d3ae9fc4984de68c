"""C-approximate barycentric spanners of a finite set of rows (paper B, §2.2; docs/approx-learner.md, "DistSpanner").

A set of basis rows b_1 … b_m is a β-approximate barycentric spanner of rows x_1 … x_n when every
x_i is written over the basis with coefficients in [−β, β]. The construction of Awerbuch and
Kleinberg (2008) starts from any basis and swaps a row in for the basis row it most depends on while
some coefficient exceeds β. By Cramer's rule that coefficient is the ratio of the two volumes, so
each swap multiplies the volume of the basis by more than β, and the loop is bounded by
log_β(vol_max / vol_0).

Here the first basis comes from greedy volume selection (LAPACK's column-pivoted QR of the
transposed rows), which reaches at least vol_max / r! for r basis rows (Çivril and Magdon-Ismail
2009). Hence the swap bound stated and tested below: swaps < ln(r!) / ln(β(1 + coef_tol)), which
is at most r·log_β r — the O(d log_β d) of the restatement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from logitrank._validation import check_int, check_real

__all__ = ["Spanner", "barycentric_spanner", "swap_bound"]

#: Default relative margin of the swap test: a row is swapped in only when its coefficient exceeds
#: β·(1 + COEF_TOL). Without a margin, rows whose coefficient is β up to rounding (duplicates when
#: β = 1) could swap forever; with it every swap multiplies the volume by more than β(1 + COEF_TOL).
COEF_TOL = 1e-9


@dataclass(frozen=True)
class Spanner:
    """A barycentric spanner of the rows given to :func:`barycentric_spanner`.

    Attributes
    ----------
    indices : (m,) LongTensor
        Rows chosen as the basis, in basis order.
    coefficients : (n, m) tensor
        Row i of the input equals ``coefficients[i] @ rows[indices]`` up to ``residuals[i]``; every
        entry lies in [−β(1 + coef_tol), β(1 + coef_tol)].
    residuals : (n,) tensor
        Euclidean distance of each row from the span of the basis (<= tol unless ``rank`` capped the
        basis below the numerical rank).
    swaps : int
        Swaps made after the greedy start.
    log_volumes : list of float
        ln of the m-dimensional volume of the basis, before and after each swap.
    numerical_rank : int
        Numerical rank of the rows at ``tol`` (>= m; > m only when ``rank`` capped the basis).
    beta, tol : float
    """

    indices: torch.Tensor
    coefficients: torch.Tensor
    residuals: torch.Tensor
    swaps: int
    log_volumes: list
    numerical_rank: int
    beta: float
    tol: float

    @property
    def size(self) -> int:
        """m, the number of basis rows."""
        return int(self.indices.numel())

    @property
    def max_coefficient(self) -> float:
        """max |coefficients| (0 for an empty basis)."""
        return float(self.coefficients.abs().max()) if self.coefficients.numel() else 0.0


def swap_bound(size: int, beta: float, coef_tol: float = COEF_TOL) -> int:
    """Largest swap count the volume argument allows for a basis of ``size`` rows.

    The greedy start has volume >= vol_max / r! and each swap multiplies it by more than
    β' = β(1 + coef_tol), so β'^swaps < r!, i.e. swaps <= ⌈ln(r!) / ln β'⌉ − 1 (0 when r <= 1).
    This is <= r·log_β r, the O(d log_β d) of the restatement.

    Examples
    --------
    >>> swap_bound(1, 2.0), swap_bound(4, 2.0), swap_bound(8, 2.0)
    (0, 4, 15)
    """
    size = check_int("size", size, minimum=0)
    beta = check_real("beta", beta, low=1.0)
    coef_tol = check_real("coef_tol", coef_tol, low=0.0)
    if beta * (1 + coef_tol) <= 1.0:
        raise ValueError(f"beta·(1 + coef_tol) must exceed 1 for a finite swap bound; got beta={beta}, coef_tol={coef_tol}")
    if size <= 1:
        return 0
    ratio = math.lgamma(size + 1) / math.log(beta * (1 + coef_tol))
    return max(0, math.ceil(ratio) - 1)


def _project(rows: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients (n, m) of the projections of ``rows`` onto span(basis rows), residual norms (n,)
    and ln vol(basis), from one QR of basisᵀ (k, m): basis = Rᵀ Qᵀ and a·basis = x Q Qᵀ give
    R aᵀ = (x Q)ᵀ."""
    Q, R = np.linalg.qr(basis.T)  # (k, m), (m, m)
    xq = rows @ Q  # (n, m)
    coef = np.linalg.solve(R, xq.T).T  # (n, m); scipy's solve_triangular costs ~35x more per call here
    resid = np.linalg.norm(rows - xq @ Q.T, axis=1)  # (n,), direct: ‖x‖² − ‖xQ‖² would cancel
    log_vol = float(np.log(np.abs(np.diag(R))).sum())
    return coef, resid, log_vol


def barycentric_spanner(
    rows: torch.Tensor,
    beta: float = 2.0,
    *,
    rank: int | None = None,
    tol: float | None = None,
    coef_tol: float = COEF_TOL,
) -> Spanner:
    """A β-approximate barycentric spanner of the rows of a matrix (paper B, §2.2; restatement, step 2–3).

    Steps (numbered as in the restatement's DistSpanner):

    2. A maximal independent subset by greedy volume selection: column-pivoted QR of ``rows``ᵀ
       (LAPACK ``geqp3``) takes, at each step, the row farthest from the span of those already
       taken, and stops when that distance is <= ``tol`` or after ``rank`` rows. With a cap the basis
       keeps the ``rank`` most significant directions, as the restatement (docs/approx-learner.md) requires for approximately
       low-rank models (otherwise the basis follows the noise).
    3. While some row needs a coefficient of magnitude > β(1 + coef_tol) over the basis, swap the
       row with the largest coefficient in for the basis row it multiplies. The coefficient equals
       the volume ratio of the two bases (Cramer's rule; with a capped basis the ratio is at least
       the coefficient of the row's projection), so each swap grows the volume by more than β and
       the count obeys :func:`swap_bound`.

    Parameters
    ----------
    rows : (n, k) tensor
        The candidate rows (computed in float64).
    beta : float >= 1
        The spanner constant β (coefficient bound).
    rank : int >= 1, optional
        Cap m on the basis size. Default: the numerical rank at ``tol``.
    tol : float >= 0, optional
        Absolute tolerance of the independence test: a row whose distance from the span of the basis
        is <= tol counts as dependent. Default eps(float64)·max(n, k)·σ_max(rows), the LAPACK
        convention for an exact-rank decision (see :func:`logitrank.algorithms.default_rank_tol`); pass a
        larger value for rows that carry errors above rounding.
    coef_tol : float >= 0
        Relative margin of the swap test (see ``COEF_TOL``); the guarantee is
        |coefficients| <= β(1 + coef_tol).

    Returns
    -------
    Spanner

    References
    ----------
    Awerbuch and Kleinberg, "Online linear optimization and adaptive routing", JCSS 2008 (the swap
    construction). Çivril and Magdon-Ismail, "On selecting a maximum volume sub-matrix of a matrix
    and related problems", TCS 2009 (greedy volume selection is within r! of the best).

    Examples
    --------
    >>> import torch
    >>> rows = torch.tensor([[0.0, 0.0], [-2.0, 2.0], [2.0, -3.0], [1.0, -3.0]], dtype=torch.float64)
    >>> sp = barycentric_spanner(rows, beta=1.0)   # greedy: rows 2, 3; row 1 needs −4/3 on row 2
    >>> sp.indices.tolist(), sp.swaps, sp.max_coefficient <= 1.0 + 1e-9
    ([1, 3], 1, True)
    >>> bool(torch.allclose(sp.coefficients @ rows[sp.indices], rows))
    True
    """
    if not isinstance(rows, torch.Tensor):
        raise TypeError(f"rows must be a (n, k) torch.Tensor; got {type(rows).__name__}")
    if rows.ndim != 2 or not rows.dtype.is_floating_point:
        raise ValueError(f"rows must be a floating (n, k) tensor; got dtype {rows.dtype} and shape {tuple(rows.shape)}")
    if not torch.isfinite(rows).all():
        raise ValueError("rows must be finite; got nan or inf entries")
    beta = check_real("beta", beta, low=1.0)
    if rank is not None:
        rank = check_int("rank", rank, minimum=1)
    coef_tol = check_real("coef_tol", coef_tol, low=0.0)
    X = rows.detach().to("cpu", torch.float64).numpy()  # (n, k)
    n, k = X.shape
    sigma_max = float(np.linalg.norm(X, 2)) if X.size else 0.0
    if not np.isfinite(sigma_max):
        raise ValueError(f"rows are too large: their spectral norm overflows float64 (largest |entry| "
                         f"{float(np.abs(X).max()):.3g}); rescale rows, the spanner is scale-invariant")
    if tol is None:
        tol = np.finfo(np.float64).eps * max(n, k) * sigma_max
    tol = check_real("tol", tol, low=0.0)
    empty = torch.zeros(n, 0, dtype=torch.float64)
    if X.size == 0 or sigma_max <= tol:
        resid = torch.from_numpy(np.linalg.norm(X, axis=1))  # (n,): no basis, every row is residual
        return Spanner(torch.zeros(0, dtype=torch.long), empty, resid, 0, [], 0, beta, float(tol))
    # 2. Greedy volume selection: |R_jj| is the distance of pivot j from the span of pivots < j.
    _, R, piv = scipy.linalg.qr(X.T, mode="economic", pivoting=True)  # X.T[:, piv] = Q R
    dist = np.abs(np.diag(R))
    numerical_rank = int((dist > tol).sum())
    m = numerical_rank if rank is None else min(rank, numerical_rank)
    basis = list(piv[:m])
    coef, resid, log_vol = _project(X, X[basis])
    log_volumes = [log_vol]
    # 3. Swaps while some coefficient exceeds β(1 + coef_tol).
    limit = beta * (1.0 + coef_tol)
    swaps = 0
    hard_stop = 10 * (swap_bound(m, beta, coef_tol) + 1)  # the volume argument says it is never reached
    while True:
        i, j = np.unravel_index(np.argmax(np.abs(coef)), coef.shape)
        if abs(coef[i, j]) <= limit:
            break
        if swaps >= hard_stop:
            raise RuntimeError(
                f"barycentric_spanner made {swaps} swaps, 10x the volume bound {swap_bound(m, beta, coef_tol)}; "
                f"the rows are too ill-conditioned at tol={tol:.3g} (raise tol or cap rank)"
            )
        basis[j] = int(i)
        coef, resid, log_vol = _project(X, X[basis])
        log_volumes.append(log_vol)
        swaps += 1
    return Spanner(
        indices=torch.tensor(basis, dtype=torch.long),
        coefficients=torch.from_numpy(coef),
        residuals=torch.from_numpy(resid),
        swaps=swaps,
        log_volumes=log_volumes,
        numerical_rank=numerical_rank,
        beta=beta,
        tol=float(tol),
    )
