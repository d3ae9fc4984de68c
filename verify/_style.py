"""One paper-ready style for every figure of logitrank.

A figure function decorated with :func:`paper_style` draws and saves inside a matplotlib
``rc_context`` (global rcParams are never changed): one-column sizes, 8-pt type, a colour-blind-safe
palette (Okabe & Ito), light grids, no top/right spines, math symbols rendered by mathtext.
:func:`finish` applies the per-axes rules: integer ticks on integer axes and a legend placed where
it covers the fewest data points, moved outside the axes when it would cover any.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["PALETTE", "ONE_COLUMN", "TWO_COLUMN", "PAPER_RC", "paper_style", "paper_figure", "finish"]

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


def _covered(ax: Axes, loc: str) -> int:
    """Data points of ``ax`` that a legend at ``loc`` would cover (display coordinates)."""
    fig = ax.figure
    leg = ax.legend(loc=loc)
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(fig).get_renderer()
    box = leg.get_window_extent(renderer)
    count = 0
    for line in ax.get_lines():
        xy = line.get_xydata()
        if len(xy) == 0:
            continue
        pts = ax.transData.transform(np.asarray(xy, dtype=float))
        count += int(np.sum((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)))
    for coll in ax.collections:
        offsets = coll.get_offsets()
        if len(offsets):
            pts = ax.transData.transform(np.asarray(offsets, dtype=float))
            count += int(np.sum((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)))
    leg.remove()
    return count


def finish(ax: Axes, *, integer_x: bool = False, integer_y: bool = False, legend: bool = True, **legend_kw) -> None:
    """Integer ticks on integer axes; a legend that covers no data (outside the axes if it must)."""
    if integer_x and ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if integer_y and ax.get_yscale() == "linear":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, _ = ax.get_legend_handles_labels()
    if not legend or not handles:
        return
    if "loc" in legend_kw:
        ax.legend(**legend_kw)
        return
    corners = ("upper right", "upper left", "lower left", "lower right", "center right", "upper center", "lower center")
    scores = {loc: _covered(ax, loc) for loc in corners}
    best = min(corners, key=lambda loc: scores[loc])
    if scores[best] == 0:
        ax.legend(loc=best, **legend_kw)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **legend_kw)
