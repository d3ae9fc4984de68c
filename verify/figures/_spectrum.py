"""The figure of ``logitrank spectrum``: the normalised spectra, the fitted power law, slope α = ½ and
paper A's band of trained LMs (paper A, Fig 2)."""

from __future__ import annotations

import math
from pathlib import Path

from .._paper import PAPER_ALPHA
from ._common import save_figure
from ._style import finish, paper_figure, paper_style

__all__ = ["paper_alpha_range", "plot_spectrum_summary", "r_squared_text"]


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


def paper_alpha_range() -> tuple[float, float]:
    """(lowest, highest) α paper A reports for a trained LM (Fig 2)."""
    return min(PAPER_ALPHA.values()), max(PAPER_ALPHA.values())


def plot_spectrum_summary(path: Path, spectra: dict, sizes: dict, k: int, summary: dict, fit) -> None:
    """``path`` (.png) and its .pdf twin: the normalised spectra σ_i/√entries of each downsized matrix
    (``spectra``: factor → (r,) array; ``sizes``: factor → (n_i, m_i); K columns per future), the fitted
    power law ``fit`` (a :class:`~logitrank.algorithms.PowerLawFit` or None), slope α = ½ and paper A's
    band of trained LMs; the title carries α, R² and the downsizing spread of ``summary``."""
    import numpy as np

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
            lo, hi = paper_alpha_range()
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


