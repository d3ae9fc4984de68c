"""One paper-ready style for every figure of logitrank.

A figure function decorated with :func:`paper_style` draws and saves inside a matplotlib
``rc_context`` (global rcParams are never changed): one-column sizes, 8-pt type, a colour-blind-safe
palette (Okabe & Ito), light grids, no top/right spines, math symbols rendered by mathtext.
:func:`finish` applies the per-axes rules: integer ticks on integer axes and a legend placed where
it covers the fewest data points, moved outside the axes when it would cover any.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["ONE_COLUMN", "PALETTE", "PAPER_RC", "TWO_COLUMN", "finish", "math_symbols", "paper_figure", "paper_style"]

#: Okabe & Ito's colour-blind-safe palette (black first for fits and references)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: width × height in inches of a one-column figure of a two-column paper, and of a full-width one
ONE_COLUMN = (3.4, 2.5)
TWO_COLUMN = (7.0, 2.6)

PAPER_RC = {
    "figure.figsize": ONE_COLUMN,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "0.8",
    "legend.handlelength": 1.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
    "axes.linewidth": 0.6,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "mathtext.fontset": "dejavusans",
    "pdf.fonttype": 42,
}


#: plain-text symbols the checks put in titles and labels, and their mathtext (longest first)
_SYMBOLS = (("σ_i", r"$\sigma_i$"), ("θ_i", r"$\theta_i$"), ("ε_avg", r"$\varepsilon_{avg}$"), ("rank-r", "rank-$r$"),
            ("rank r", "rank $r$"), ("α", r"$\alpha$"), ("β", r"$\beta$"), ("ε", r"$\varepsilon$"), ("ξ", r"$\xi$"),
            ("λ", r"$\lambda$"), ("σ", r"$\sigma$"), ("R²", "$R^2$"))


def math_symbols(text: str) -> str:
    r"""``text`` with plain symbols (α, σ_i, ε_avg, ξ, "rank r", "r = 5", R², …) written in mathtext.

    Text that already holds a ``$`` is returned unchanged (its author chose the markup).

    >>> print(math_symbols("tiny: α ≈ 0.61, rank r, r = 5"))
    tiny: $\alpha$ ≈ 0.61, rank $r$, $r$ = 5
    """
    if "$" in text:
        return text
    for plain, math in _SYMBOLS:  # whole symbols only: "rank rows" keeps its r
        after = "(?![A-Za-z_])" if len(plain) == 1 else "(?![A-Za-z0-9_])"  # "α1" is α = 1 in a model's name
        text = re.sub(rf"(?<![A-Za-z]){re.escape(plain)}{after}", lambda _m, m=math: m, text)
    return re.sub(r"(?<![\w$])([A-Za-z]) = ", r"$\1$ = ", text)  # a one-letter variable set to a value: "r = 5"


def paper_style(fn: Callable) -> Callable:
    """Decorator: run a figure function inside the paper style (never touches global rcParams)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(PAPER_RC):
            return fn(*args, **kwargs)

    return wrapper


def paper_figure(width: str = "one", *, rows: int = 1, cols: int = 1, height: float | None = None, **subplot_kw):
    """A constrained-layout :class:`~matplotlib.figure.Figure` and its axes (call under :func:`paper_style`).

    ``width`` is "one" (3.4 in) or "two" (7.0 in); ``height`` defaults to the style's height per row.
    Returns (fig, ax) for one panel, (fig, array of axes) otherwise.
    """
    if width not in ("one", "two"):
        raise ValueError(f"width must be 'one' or 'two'; got {width!r}")
    w, h = ONE_COLUMN if width == "one" else TWO_COLUMN
    fig = Figure(figsize=(w, height if height is not None else h * (1 + 0.8 * (rows - 1))), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **subplot_kw)
    return fig, (axes[0, 0] if rows == cols == 1 else axes.ravel())


def _along(pts: np.ndarray, per_segment: int = 16) -> np.ndarray:
    """Points along the polyline ``pts`` (n, 2) in display coordinates, ``per_segment`` per segment."""
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) < 2:
        return pts
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[None, :, None]  # (1, m, 1)
    seg = pts[:-1, None, :] + t * (pts[1:] - pts[:-1])[:, None, :]  # (n-1, m, 2)
    return np.concatenate([seg.reshape(-1, 2), pts[-1:]])


def _covered(ax: Axes, loc: str, pad: tuple[float, float] = (1.04, 1.08)) -> int:
    """Data points of ``ax`` (and its twins) that a legend at ``loc``, its box enlarged by ``pad``
    (x, y factors: a little air between legend and data), would cover (display coordinates)."""
    fig = ax.figure
    leg = ax.legend(loc=loc)
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(fig).get_renderer()
    box = leg.get_window_extent(renderer).expanded(*pad)
    count = 0
    # the data of ``ax`` and of its twins (axes at the same place, e.g. from ``twinx``), each in its own coordinates
    here = ax.get_position().bounds
    for owner in [a for a in fig.axes if a is ax or a.get_position().bounds == here]:
        for line in owner.get_lines():
            xy = line.get_xydata()
            if len(xy) == 0:
                continue
            pts = line.get_transform().transform(np.asarray(xy, dtype=float))
            if line.get_linestyle() not in ("None", "none", " ", "") and len(pts) > 1:
                pts = _along(pts)  # a drawn segment (e.g. an axhline) covers data along its whole length
            count += int(np.sum((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)))
        for patch in owner.patches:  # bars: covered when the legend overlaps the drawn rectangle
            ext = patch.get_window_extent(renderer)
            count += int(ext.x0 < box.x1 and box.x0 < ext.x1 and ext.y0 < box.y1 and box.y0 < ext.y1)
        for coll in owner.collections:
            offsets = coll.get_offsets()
            if len(offsets):
                pts = owner.transData.transform(np.asarray(offsets, dtype=float))
                count += int(np.sum((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)))
    leg.remove()
    return count


def finish(ax: Axes, *, integer_x: bool = False, integer_y: bool = False, legend: bool = True, **legend_kw) -> None:
    """Integer ticks on integer axes; a legend that covers no data (outside the axes if it must)."""
    if integer_x and ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    if integer_y and ax.get_yscale() == "linear":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    handles, _ = ax.get_legend_handles_labels()
    if not legend or not handles:
        return
    if "loc" in legend_kw:
        ax.legend(**legend_kw)
        return
    engine = ax.figure.get_layout_engine()
    if engine is not None:  # measure in the final layout (e.g. after a two-line title shrank the axes)
        _extent(ax)
        engine.execute(ax.figure)
    corners = ("upper right", "upper left", "lower left", "lower right", "center right", "upper center", "lower center")
    scores = {loc: _covered(ax, loc) for loc in corners}
    best = min(corners, key=lambda loc: scores[loc])
    if scores[best] == 0:
        ax.legend(loc=best, **legend_kw)
        return
    fig = ax.figure
    leg = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **legend_kw)
    alone = all(a is ax or a.get_position().bounds == ax.get_position().bounds for a in fig.axes)
    width, height = fig.get_size_inches()
    beside = _extent(leg).width / fig.dpi
    if alone and beside > 0.3 * width:
        # a wide legend beside a one-panel figure would squeeze the axes: put it below, and make the figure
        # taller by the legend's height so the axes keep their size
        handles, labels = ax.get_legend_handles_labels()
        leg.remove()
        ncol = 2 if len(labels) > 3 and beside < 0.45 * width else 1
        leg = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, **legend_kw)
        fig.set_size_inches(width, height + _extent(leg).height / fig.dpi)


def _extent(artist):
    """Window extent of ``artist`` in display units (pixels at the figure's dpi)."""
    fig = artist.figure
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    return artist.get_window_extent(fig.canvas.get_renderer())
