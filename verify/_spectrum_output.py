"""What ``logitrank spectrum`` shows: the figure (spectrum, fitted power law, α = ½ and paper A's band),
the printed summary lines, and the versions recorded in ``summary.json``."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["r_squared_text", "report_lines"]


def _versions() -> dict:
    from importlib import metadata

    v = {}
    for pkg in ("logitrank", "torch", "transformers"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = None
    return v


def r_squared_text(r2: float) -> str:
    """R² with 3 decimals, or as many more as it takes not to round to 1 (0.995 → "0.995", 0.99996 → "0.99996").

    >>> r_squared_text(0.9953), r_squared_text(0.99996), r_squared_text(1.0)
    ('0.995', '0.99996', '1.000')
    """
    for digits in range(3, 9):
        text = f"{r2:.{digits}f}"
        if r2 >= 1 or float(text) < 1:
            return text
    return f"{r2:.8f}"


def _paper_alphas() -> tuple[float, float]:
    """(lowest, highest) α paper A reports for a trained LM (Fig 2)."""
    from .checks._real_claims import PAPER_ALPHA

    return min(PAPER_ALPHA.values()), max(PAPER_ALPHA.values())


def _figure(path: Path, spectra: dict, sizes: dict, k: int, summary: dict, fit) -> None:
    """``path`` (.png) and its .pdf twin, drawn in the paper style of :mod:`logitrank.verify._style`: the
    normalised spectra, the fitted power law, slope α = ½ and paper A's band of trained LMs."""
    import numpy as np

    from ._figures import save_figure
    from ._style import finish, paper_figure, paper_style

    @paper_style
    def draw():
        fig, ax = paper_figure(height=3.0)
        norm1 = math.sqrt(sizes[1][0] * sizes[1][1] * k)
        for i, sv in spectra.items():
            ni, mi = sizes[i]
            keep = sv > 0
            ax.loglog(np.arange(1, len(sv) + 1)[keep], sv[keep] / math.sqrt(ni * mi * k), lw=1.2 if i == 1 else 0.8,
                      label=f"{ni}×{mi}·{k}" + (" (full)" if i == 1 else f" (÷{i})"))
        a, r2 = summary["alpha (paper indexing)"], summary["R² (paper indexing)"]
        if fit is not None:
            x = fit.position.astype(float)
            ax.loglog(x, fit.fitted / norm1, "k--", lw=1.0, label=rf"fit: $\alpha$ = {a:.3f}, $R^2$ = {r_squared_text(r2)}")
            x0, y0 = x[0], fit.fitted[0] / norm1
            ax.loglog(x, y0 * (x / x0) ** -0.5, color="0.35", ls=":", lw=1.0, label=r"$\alpha$ = ½ (slope)")
            lo, hi = _paper_alphas()
            ax.fill_between(x, y0 * (x / x0) ** -lo, y0 * (x / x0) ** -hi, color="0.6", alpha=0.35, lw=0,
                            label=rf"paper A, trained LMs: $\alpha$ {lo:.2f}–{hi:.2f}")
        spread, limit = summary["alpha spread over downsizing (paper indexing)"], summary["alpha spread limit (E1)"]
        title = rf"{summary['model']}: $\alpha$ = {a:.3f} ($R^2$ = {r_squared_text(r2)}, paper indexing)" if a is not None else summary["model"]
        if spread is not None:
            title += "\n" + rf"$\alpha$ spread over downsizing {spread:.3f} " + ("≤" if spread <= limit else ">") + f" E1's limit {limit:g}"
        ax.set(xlabel=r"index $i$", ylabel=r"$\sigma_i\,/\,\sqrt{\mathrm{entries}}$", title=title)
        finish(ax)
        save_figure(fig, path.parent, path.stem)

    draw()


def report_lines(summary: dict) -> list[str]:
    """What ``logitrank spectrum`` prints: sizes, both α's (which the paper uses, and why the other is
    shown), the downsizing spread against E1's limit, and where the files went."""
    from .checks._real_claims import ALPHA_BAND

    s = summary["settings"]
    lo, hi = _paper_alphas()
    lines = [(f"{summary['model']}: |H| = {summary['|H|']}, |F| = {summary['|F|']}, k = {s['k']}, lengths "
              f"{s['lengths'][0]}:{s['lengths'][1]} characters ({s['lengths from']})")]
    a, r2 = summary["alpha (paper indexing)"], summary["R² (paper indexing)"]
    ao, r2o = summary["alpha (original indexing)"], summary["R² (original indexing)"]
    if a is not None:
        lines.append(f"α = {a:.3f} (R² = {r_squared_text(r2)}), paper indexing: Appendix A.1.1 renumbers σ after dropping "
                     f"the largest; compare it with paper A's {lo:.2f}–{hi:.2f} (E1's band ({ALPHA_BAND[0]}, {ALPHA_BAND[1]}])")
    if ao is not None:
        lines.append(f"α = {ao:.3f} (R² = {r_squared_text(r2o)}), original indexing: shown because that renumbering "
                     "biases α low on an exact power law (α = 0.55 at n = 1000 fits as 0.488)")
    spread, limit = summary["alpha spread over downsizing (paper indexing)"], summary["alpha spread limit (E1)"]
    if spread is not None:
        verdict = (f"<= E1's limit {limit:g}: stable under downsizing" if spread <= limit
                   else f"> E1's limit {limit:g}: NOT stable under downsizing")
        lines.append(f"α spread over downsizing ÷1…÷{max(int(i) for i in summary['downsized'])}: {spread:.3f} {verdict}")
    lines.append(f"{summary['seconds']['total']:.0f} s; files in {summary['out']}: {', '.join(summary['files'])}")
    return lines
