"""α against N: a saturating fit and E1 judged on the trend (paper A, §3.1 and Appendix A.1.1).

Paper A measures α at |H| = |F| = N = 10⁴; a CPU reaches N of a few hundred, where α is still rising.
This module turns a handful of (N, α) points into a verdict by a rule fixed before the larger runs
(``results-reference/smollm2/E1_TREND_RULE.md``):

- :func:`fit_saturating` fits α(N) = α∞ − c·N^(−β), c ≥ 0, β ∈ [β_min, β_max], by variable projection:
  for a fixed β the model is linear in (α∞, c), so β is scanned on a log grid and refined by a bounded
  scalar search — no starting point to choose. α∞ gets a percentile interval from a parametric
  bootstrap over the fit's residuals.
- :func:`judge_alpha_trend` applies the rule: *holds* at the largest N, *trending* when α rises
  monotonically and the α∞ interval meets the band, *fails* otherwise, *not judged* until the largest N
  exists or when a point's dtype error makes the verdict depend on the dtype.

Shapes: n (m,) histories per axis; alpha (m,) fitted exponents, one per N.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from .._paper import ALPHA_BAND, ALPHA_SPREAD, MIN_R2, in_alpha_band

__all__ = ["SaturatingFit", "TrendPoint", "TrendVerdict", "fit_saturating", "judge_alpha_trend", "judge_over_seeds",
           "trend_point"]

#: largest measured |α_dtype − α_float32| with which a non-float32 point may decide the verdict
DTYPE_LIMIT = 0.01
#: how the bootstrap sets the noise level of a draw (see :func:`fit_saturating`)
NOISE_MODELS = ("plug-in", "scaled")
#: the range of β scanned (fixed in the rule's addendum before the N = 256 result)
BETA_RANGE = (0.05, 4.0)


@dataclass(frozen=True)
class TrendPoint:
    """One N of the α-against-N curve (one ``logitrank spectrum`` run).

    alpha / r_squared / spread are in the paper's (A.1.1) indexing; ``dtype_error`` is the measured
    |α_dtype − α_float32| when the point did not run in float32 (0 otherwise), ``spread_error`` the
    measured change of the spread.
    """

    n: int
    alpha: float
    r_squared: float
    spread: float
    alpha_original: float = math.nan
    dtype: str = "float32"
    dtype_error: float = 0.0
    spread_error: float = 0.0
    seconds: float = math.nan

    def __post_init__(self):
        if not (isinstance(self.n, (int, np.integer)) and self.n >= 2):
            raise ValueError(f"TrendPoint.n must be an integer ≥ 2; got {self.n!r}")
        for name in ("alpha", "r_squared", "spread"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"TrendPoint.{name} must be finite; got {getattr(self, name)!r} at N = {self.n}")
        for name in ("dtype_error", "spread_error"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"TrendPoint.{name} must be finite and ≥ 0; got {value!r} at N = {self.n}")


@dataclass(frozen=True)
class SaturatingFit:
    """α(N) = alpha_inf − c·N^(−beta) and the bootstrap interval of alpha_inf.

    ``interval`` is (lo, hi) at ``level`` (percentiles of the bootstrap draws); ``at_bound`` says β sits
    at an end of :data:`BETA_RANGE` (then α∞ is an extrapolation the data cannot pin down);
    ``draws_at_bound`` is the fraction of bootstrap refits with β at a bound.
    """

    alpha_inf: float
    c: float
    beta: float
    rss: float
    residual_sd: float
    interval: tuple[float, float]
    level: float
    n_boot: int
    at_bound: bool
    draws_at_bound: float
    n: tuple[int, ...] = field(default=())
    #: (n_boot, 3) bootstrap refits (alpha_inf, c, beta), for pointwise bands of the curve
    draws: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), repr=False, compare=False)

    def band(self, n) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the bootstrap curves at ``n`` (m,), at the fit's level: (lo, hi)."""
        n = np.asarray(n, dtype=np.float64)
        if not len(self.draws):
            raise ValueError("this fit holds no bootstrap draws (n_boot draws are kept by fit_saturating)")
        curves = self.draws[:, :1] - self.draws[:, 1:2] * n[None, :] ** (-self.draws[:, 2:3])
        q = (1 - self.level) / 2
        lo, hi = np.quantile(curves, [q, 1 - q], axis=0)
        return lo, hi

    def predict(self, n) -> np.ndarray:
        """α(N) of the fit at ``n`` (any shape)."""
        n = np.asarray(n, dtype=np.float64)
        return self.alpha_inf - self.c * n ** (-self.beta)


def _check_curve(n, alpha, pooled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if n.ndim != 1 or alpha.shape != n.shape:
        raise ValueError(f"n and alpha must be 1-d of one length; got shapes {n.shape} and {alpha.shape}")
    if n.size < 4:
        raise ValueError(f"fit_saturating needs at least 4 points (3 parameters and a residual); got {n.size}")
    if not (np.all(np.isfinite(n)) and np.all(n >= 1)):
        raise ValueError(f"n must hold finite values ≥ 1; got {n.tolist()}")
    if not pooled and np.unique(n).size != n.size:
        raise ValueError(f"n must hold distinct values (pass pooled=True for several cuts' points); got {n.tolist()}")
    if pooled and np.unique(n).size < 3:
        raise ValueError(f"pooled points need at least 3 distinct N (3 parameters); got {sorted(set(n.tolist()))}")
    if not np.all(np.isfinite(alpha)):
        raise ValueError(f"alpha must be finite; got {alpha.tolist()}")
    return n, alpha


def _linear_part(x: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of alpha ≈ a − c·x with c ≥ 0, for each row of x: (a, c, rss), each (g,).

    x : (g, m) values N^(−β), one row per β;  alpha : (m,)
    """
    xm = x.mean(axis=1, keepdims=True)
    am = alpha.mean()
    dx = x - xm
    sxx = (dx**2).sum(axis=1)
    sxy = (dx * (alpha - am)).sum(axis=1)
    c = np.where(sxx > 0, -sxy / np.where(sxx > 0, sxx, 1.0), 0.0)
    c = np.maximum(c, 0.0)
    a = am + c * xm[:, 0]
    rss = ((alpha[None, :] - (a[:, None] - c[:, None] * x)) ** 2).sum(axis=1)
    return a, c, rss


def _fit_once(log_n: np.ndarray, alpha: np.ndarray, grid: np.ndarray) -> tuple[float, float, float, float]:
    """(alpha_inf, c, beta, rss) minimising the residual sum of squares over β ∈ BETA_RANGE.

    log_n : (m,) log N;  alpha : (m,);  grid : (g,) β values scanned before a bounded scalar refinement
    """
    rss = _linear_part(np.exp(-grid[:, None] * log_n[None, :]), alpha)[2]
    i = int(np.argmin(rss))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    beta = float(grid[i])
    res = minimize_scalar(lambda b: float(_linear_part(np.exp(-b * log_n)[None, :], alpha)[2][0]), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-10})
    if res.fun <= rss[i]:
        beta = float(res.x)
    a, c, r = _linear_part(np.exp(-beta * log_n)[None, :], alpha)
    return float(a[0]), float(c[0]), beta, float(r[0])


def fit_saturating(n: Sequence[float], alpha: Sequence[float], *, n_boot: int = 1000, level: float = 0.68,
                   seed: int = 0, grid_size: int = 400, noise: str = "plug-in", pooled: bool = False) -> SaturatingFit:
    """Fit α(N) = α∞ − c·N^(−β) and a parametric-bootstrap interval of α∞.

    Parameters
    ----------
    n : (m,) values of N, m ≥ 4, distinct unless ``pooled``
    alpha : (m,) α at each N
    n_boot : bootstrap draws α*ᵢ = fitᵢ + N(0, σ²), each refitted the same way
    noise : how σ is set in each draw. ``"plug-in"``: σ = s, s² = RSS / (m − 3) (SmolLM2's committed rule;
        with 2 residual degrees of freedom it under-covers: ≈ 53 % for a nominal 68 %). ``"scaled"``: each
        draw first draws σ² = s²·ν / χ²_ν, ν = m − 3, so the interval carries the uncertainty of s too
        (Gemma-3's joint rule, ``results-reference/gemma3/E1_TREND_RULE.md``).
    pooled : the points may repeat an N (several corpus cuts fitted as one curve); ≥ 3 distinct N
    level : central probability of the interval (0.68: the 16th and 84th percentiles)
    seed : seed of the bootstrap's own generator (the global RNG is not touched)
    grid_size : log-spaced β values scanned in :data:`BETA_RANGE` before the bounded refinement

    Returns
    -------
    SaturatingFit

    Examples
    --------
    >>> n = [32, 64, 128, 256, 512]
    >>> fit = fit_saturating(n, [0.6 - 2.0 * x ** -0.5 for x in n], n_boot=50)
    >>> round(fit.alpha_inf, 6), round(fit.beta, 4)
    (0.6, 0.5)
    """
    n, alpha = _check_curve(n, alpha, pooled)
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise must be one of {NOISE_MODELS}; got {noise!r}")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 10):
        raise ValueError(f"n_boot must be an integer ≥ 10; got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1); got {level!r}")
    if not (isinstance(grid_size, (int, np.integer)) and grid_size >= 10):
        raise ValueError(f"grid_size must be an integer ≥ 10; got {grid_size!r}")
    grid = np.geomspace(*BETA_RANGE, grid_size)
    log_n = np.log(n)
    a, c, beta, rss = _fit_once(log_n, alpha, grid)
    dof = n.size - 3
    s = math.sqrt(rss / dof)
    fitted = a - c * n ** (-beta)
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, 3))
    for j in range(n_boot):
        sigma = s if noise == "plug-in" else s * math.sqrt(dof / rng.chisquare(dof))
        draws[j] = _fit_once(log_n, fitted + rng.normal(0.0, sigma, n.size), grid)[:3]
    at_bound = sum(_at_bound(b) for b in draws[:, 2])
    q = (1 - level) / 2
    lo, hi = np.quantile(draws[:, 0], [q, 1 - q])
    return SaturatingFit(alpha_inf=a, c=c, beta=beta, rss=rss, residual_sd=s, interval=(float(lo), float(hi)),
                         level=level, n_boot=int(n_boot), at_bound=_at_bound(beta), draws_at_bound=at_bound / n_boot,
                         n=tuple(int(v) for v in n), draws=draws)


def _at_bound(beta: float) -> bool:
    return bool(math.isclose(beta, BETA_RANGE[0], rel_tol=1e-6) or math.isclose(beta, BETA_RANGE[1], rel_tol=1e-6))


@dataclass(frozen=True)
class TrendVerdict:
    """The verdict of :func:`judge_alpha_trend` and the numbers behind it."""

    verdict: str  # "holds" | "trending" | "fails" | "not judged"
    reason: str
    largest_n: int
    alpha_at_largest: float | None
    fit: SaturatingFit | None


def _band(band: tuple[float, float]) -> str:
    return f"({band[0]:g}, {band[1]:g}]"


def judge_alpha_trend(points: Sequence[TrendPoint], *, largest_n: int = 512, band: tuple[float, float] = ALPHA_BAND,
                      spread_limit: float = ALPHA_SPREAD, min_r2: float = MIN_R2, dtype_limit: float = DTYPE_LIMIT,
                      n_boot: int = 1000, seed: int = 0) -> TrendVerdict:
    """E1 judged on the trend of α against N (the rule of ``results-reference/smollm2/E1_TREND_RULE.md``).

    - **holds**: α at ``largest_n`` in ``band`` (open below, closed above), its spread ≤ ``spread_limit``,
      its R² ≥ ``min_r2``;
    - **trending**: not *holds*, α strictly rising over the points in order of N, and the bootstrap
      interval of α∞ overlapping the band;
    - **fails**: anything else;
    - **not judged**: no point at ``largest_n``; or the largest point ran in another dtype and its
      measured dtype error exceeds ``dtype_limit``, or its α ± that error (or spread ± its change)
      straddles a threshold, so the verdict depends on the dtype.

    Parameters
    ----------
    points : TrendPoints, one per N (any order; distinct N)
    """
    pts = sorted(points, key=lambda p: p.n)
    if not pts:
        raise ValueError("judge_alpha_trend needs at least one TrendPoint; got none")
    ns = [p.n for p in pts]
    if len(set(ns)) != len(ns):
        raise ValueError(f"points must have distinct N; got {ns}")
    if ns[-1] != largest_n:
        return TrendVerdict("not judged", f"no point at N = {largest_n} yet (largest N = {ns[-1]})", ns[-1], None, None)
    top = pts[-1]
    if top.dtype_error > dtype_limit:
        return TrendVerdict("not judged", f"the {top.dtype} error on α, {top.dtype_error:.4f}, exceeds {dtype_limit}: "
                            "the verdict waits for a float32 run at this N", top.n, top.alpha, None)
    if _straddles(top, band, spread_limit):
        return TrendVerdict("not judged", f"α = {top.alpha:.3f} ± {top.dtype_error:.3f} ({top.dtype}) or spread "
                            f"{top.spread:.3f} ± {top.spread_error:.3f} straddles a threshold: the verdict depends "
                            "on the dtype", top.n, top.alpha, None)
    fit = fit_saturating(ns, [p.alpha for p in pts], n_boot=n_boot, seed=seed) if len(pts) >= 4 else None
    at = f"α(N = {top.n}) = {top.alpha:.3f}, spread {top.spread:.3f}, R² {top.r_squared:.3f}"
    if in_alpha_band(top.alpha, band) and top.spread <= spread_limit and top.r_squared >= min_r2:
        return TrendVerdict("holds", f"{at}: in the band {_band(band)}, spread ≤ {spread_limit}, R² ≥ {min_r2}",
                            top.n, top.alpha, fit)
    rises = all(b.alpha > a.alpha for a, b in itertools.pairwise(pts))
    overlaps = fit is not None and fit.interval[1] > band[0] and fit.interval[0] <= band[1]
    if rises and overlaps:
        lo, hi = fit.interval
        return TrendVerdict("trending", f"{at}; α rises at every N and α∞ = {fit.alpha_inf:.3f} "
                            f"[{lo:.3f}, {hi:.3f}] meets the band {_band(band)}", top.n, top.alpha, fit)
    why = []
    if not rises:
        falls = [f"{a.n}→{b.n}: {b.alpha - a.alpha:+.3f}" for a, b in itertools.pairwise(pts) if b.alpha <= a.alpha]
        why.append("α does not rise at every N (" + ", ".join(falls) + ")")
    if fit is None:
        why.append(f"too few points for the saturating fit ({len(pts)} < 4)")
    elif not overlaps:
        why.append(f"α∞ = {fit.alpha_inf:.3f} [{fit.interval[0]:.3f}, {fit.interval[1]:.3f}] misses the band {_band(band)}")
    return TrendVerdict("fails", f"{at}; " + "; ".join(why), top.n, top.alpha, fit)


def _straddles(p: TrendPoint, band: tuple[float, float], spread_limit: float) -> bool:
    if p.dtype_error == 0 and p.spread_error == 0:
        return False
    lo, hi = p.alpha - p.dtype_error, p.alpha + p.dtype_error
    alpha_split = any(lo <= t <= hi for t in band)
    spread_split = p.spread - p.spread_error <= spread_limit <= p.spread + p.spread_error
    return alpha_split or spread_split


def trend_point(summary, *, dtype_error: float = 0.0, spread_error: float = 0.0) -> TrendPoint:
    """A :class:`TrendPoint` from a ``logitrank spectrum`` run: its ``summary.json`` (path or mapping).

    N is |H| (which must equal |F|), the dtype is the run's ``--dtype`` and the time its total seconds.
    """
    if not isinstance(summary, dict):
        path = Path(summary)
        if path.is_dir():
            path = path / "summary.json"
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"summary must be a readable summary.json of `logitrank spectrum`; {path}: {exc}") from exc
    try:
        n_h, n_f = int(summary["|H|"]), int(summary["|F|"])
        point = {"alpha": float(summary["alpha (paper indexing)"]), "r_squared": float(summary["R² (paper indexing)"]),
                     "spread": float(summary["alpha spread over downsizing (paper indexing)"]),
                     "alpha_original": float(summary["alpha (original indexing)"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"summary lacks a field of `logitrank spectrum`'s summary.json: {exc!r}") from exc
    if n_h != n_f:
        raise ValueError(f"the α-against-N curve needs |H| = |F|; got |H| = {n_h}, |F| = {n_f}")
    dtype = str((summary.get("settings") or {}).get("dtype") or "float32")
    seconds = float((summary.get("seconds") or {}).get("total", math.nan))
    return TrendPoint(n=n_h, dtype=dtype, dtype_error=dtype_error, spread_error=spread_error, seconds=seconds,
                      **point)


def judge_over_seeds(verdicts) -> tuple[str, str]:
    """One verdict from per-seed trend verdicts (the project's rule for empirical claims).

    The same verdict at every seed is the verdict; different verdicts give *mixed*, naming each seed's.

    Parameters
    ----------
    verdicts : mapping seed → TrendVerdict (at least one)

    Returns
    -------
    (verdict, reason)
    """
    if not verdicts:
        raise ValueError("judge_over_seeds needs at least one seed's verdict; got none")
    names = {seed: v.verdict for seed, v in verdicts.items()}
    each = "; ".join(f"seed {seed}: {v.verdict} ({v.reason})" for seed, v in verdicts.items())
    if len(set(names.values())) == 1:
        verdict = next(iter(names.values()))
        return verdict, (f"{verdict} at every seed ({len(names)})" if len(names) > 1 else "one seed only") + f" — {each}"
    return "mixed", f"seeds disagree — {each}"
