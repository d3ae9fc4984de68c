"""The power-law fit of paper A, Appendix A.1.1: the exponent α of σ_i ≈ C·i^{−α} (Figures 2, 6, 8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["PowerLawFit", "fit_power_law"]


_INDEXINGS = ("paper", "original")


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
