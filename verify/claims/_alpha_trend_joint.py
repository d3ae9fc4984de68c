"""E1 judged on one α-against-N curve over several corpus cuts (paper A, §3.1 and Appendix A.1.1).

The rule is ``results-reference/gemma3/E1_TREND_RULE.md`` (written before Gemma-3's N = 256 and 512 runs):
every (N, cut) point is one noisy reading of one saturating curve α(N) = α∞ − c·N^(−β), fitted to all of
them at once (:func:`~logitrank.verify.claims.fit_saturating` with ``pooled=True``), and α∞'s interval comes
from the bootstrap that also draws the noise level (``noise="scaled"``). With two cuts of five N that is
7 residual degrees of freedom instead of the 2 of a single-cut fit, whose plug-in interval under-covers.

- **holds**: at ``largest_n``, at every cut, α in the band, spread ≤ the limit, R² ≥ the minimum;
- **trending**: not *holds*, the mean α over the cuts rises at every step of N, and the joint interval of
  α∞ overlaps the band;
- **fails**: anything else;
- **not judged**: some cut lacks ``largest_n``, or a top point's dtype error exceeds the limit or makes
  it straddle a threshold.

Shapes: each cut's points (m,) TrendPoints, one per N; the pooled fit reads (cuts·m,) points.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from .._paper import ALPHA_BAND, ALPHA_SPREAD, MIN_R2, in_alpha_band
from ._alpha_trend import DTYPE_LIMIT, TrendPoint, TrendVerdict, _band, _straddles, fit_saturating

__all__ = ["judge_alpha_trend_joint"]


def _by_cut(points_by_cut: Mapping[int, Sequence[TrendPoint]]) -> dict[int, list[TrendPoint]]:
    """Each cut's points sorted by N, checked: at least one cut, distinct N within a cut, the same N in each."""
    if not points_by_cut:
        raise ValueError("judge_alpha_trend_joint needs the points of at least one cut; got none")
    cuts = {cut: sorted(pts, key=lambda p: p.n) for cut, pts in points_by_cut.items()}
    for cut, pts in cuts.items():
        ns = [p.n for p in pts]
        if not ns or len(set(ns)) != len(ns):
            raise ValueError(f"points_by_cut[{cut!r}] must hold points of distinct N; got N = {ns}")
    return cuts


def _undecidable(cuts: dict[int, list[TrendPoint]], largest_n: int, band, spread_limit, dtype_limit) -> str | None:
    """Why no verdict can be drawn yet (None when one can)."""
    missing = [cut for cut, pts in cuts.items() if pts[-1].n != largest_n]
    if missing:
        return f"no point at N = {largest_n} yet at cut(s) {missing}"
    common = [sorted(p.n for p in pts) for pts in cuts.values()]
    if any(ns != common[0] for ns in common):
        return "the cuts do not share their N yet (" + "; ".join(f"cut {c}: {[p.n for p in pts]}"
                                                               for c, pts in cuts.items()) + ")"
    for cut, pts in cuts.items():
        top = pts[-1]
        if top.dtype_error > dtype_limit:
            return (f"cut {cut}: the {top.dtype} error on α, {top.dtype_error:.4f}, exceeds {dtype_limit}: the verdict "
                    "waits for a float32 run at this N")
        if _straddles(top, band, spread_limit):
            return (f"cut {cut}: α = {top.alpha:.3f} ± {top.dtype_error:.3f} ({top.dtype}) or spread {top.spread:.3f} ± "
                    f"{top.spread_error:.3f} straddles a threshold: the verdict depends on the dtype")
    return None


def judge_alpha_trend_joint(points_by_cut: Mapping[int, Sequence[TrendPoint]], *, largest_n: int = 512,
                            band: tuple[float, float] = ALPHA_BAND, spread_limit: float = ALPHA_SPREAD,
                            min_r2: float = MIN_R2, dtype_limit: float = DTYPE_LIMIT, n_boot: int = 1000,
                            seed: int = 0, noise: str = "scaled") -> TrendVerdict:
    """E1 on the trend of α against N, one curve over several corpus cuts (module docstring: the rule).

    Parameters
    ----------
    points_by_cut : mapping cut seed → that cut's TrendPoints (m,), distinct N within a cut
    noise : the bootstrap's noise model (``"scaled"`` in the rule; ``"plug-in"`` for comparison)

    Returns
    -------
    TrendVerdict whose ``alpha_at_largest`` is the mean over cuts and ``fit`` the pooled fit (None when
    not judged).
    """
    cuts = _by_cut(points_by_cut)
    largest = max(pts[-1].n for pts in cuts.values())
    why_not = _undecidable(cuts, largest_n, band, spread_limit, dtype_limit)
    if why_not is not None:
        return TrendVerdict("not judged", why_not, largest, None, None)
    tops = {cut: pts[-1] for cut, pts in cuts.items()}
    mean_top = float(np.mean([p.alpha for p in tops.values()]))
    at = "; ".join(f"cut {c}: α(N = {p.n}) = {p.alpha:.3f}, spread {p.spread:.3f}, R² {p.r_squared:.3f}"
                   for c, p in tops.items())
    if all(in_alpha_band(p.alpha, band) and p.spread <= spread_limit and p.r_squared >= min_r2 for p in tops.values()):
        return TrendVerdict("holds", f"{at}: every cut in the band {_band(band)}, spread ≤ {spread_limit}, "
                            f"R² ≥ {min_r2}", largest_n, mean_top, None)
    pooled = [p for pts in cuts.values() for p in pts]
    fit = fit_saturating([p.n for p in pooled], [p.alpha for p in pooled], n_boot=n_boot, seed=seed, noise=noise,
                         pooled=True)
    ns = [p.n for p in next(iter(cuts.values()))]
    means = [float(np.mean([pts[i].alpha for pts in cuts.values()])) for i in range(len(ns))]
    rises = all(b > a for a, b in itertools.pairwise(means))
    lo, hi = fit.interval
    overlaps = hi > band[0] and lo <= band[1]
    joint = f"joint α∞ = {fit.alpha_inf:.3f} [{lo:.3f}, {hi:.3f}] ({len(pooled)} points, noise {noise})"
    if rises and overlaps:
        return TrendVerdict("trending", f"{at}; the mean α over cuts rises at every N and the {joint} meets the band "
                            f"{_band(band)}", largest_n, mean_top, fit)
    why = []
    if not rises:
        why.append("the mean α over cuts does not rise at every N (" + ", ".join(
            f"{a}→{b}: {mb - ma:+.3f}" for (a, ma), (b, mb) in itertools.pairwise(zip(ns, means)) if mb <= ma) + ")")
    if not overlaps:
        why.append(f"the {joint} misses the band {_band(band)}")
    return TrendVerdict("fails", f"{at}; " + "; ".join(why), largest_n, mean_top, fit)
