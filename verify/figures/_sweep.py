"""Figures of a sweep: one metric against one parameter, a line per ``hue`` value, a panel per value of the rest.

What a point shows: the median over the seeds of one cell. Its bar spans the seeds' [min, max] when
the cell has 2 to :data:`IQR_MIN_SEEDS` − 1 seeds and their IQR from that many up (a quartile of three
numbers says little); a cell with one seed gets no bar, and the title says which of these it drew.
Nothing is pooled silently: every parameter that varies among the plotted rows and is on neither
axis nor the hue gets its own panels (``col``, ``row``, chosen when not given); pooling is asked for
by name (``pool``). Failed rows are drawn as × at the foot of the axes; rows of the approximate
learner that did not accept (``accepted == 0``) as hollow points.

Axes that cannot mislead:

* an axis whose positive values span a factor of 10 or more (so any axis over two decades) is
  logarithmic, unless ``xscale``/``yscale`` say otherwise (:func:`_log_scale`);
* a zero on a logarithmic axis is drawn apart: at its own tick labelled "0", beyond a dotted break,
  as a marker never joined to the line (no symlog stretch between 0 and the smallest value);
* labels come from :data:`LABELS` (``tv_truth`` → "TV to the truth"), ticks are few (at most about
  six decades labelled), the filters (``where``) appear once in the title and in the file name;
* a heatmap (seaborn's) writes each cell's value in black or white, whichever reads on its colour,
  and its colour scale spans every value drawn.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from .._metrics import IQR_MIN_SEEDS
from ._common import save_figure
from ._style import PALETTE, finish, math_symbols, paper_figure, paper_style

__all__ = ["LABELS", "axis_label", "filter_rows", "plot_sweep"]

SCALES = ("auto", "linear", "log")
#: most panels one figure draws; more must be narrowed with ``where``
MAX_PANELS = 24
#: most labelled decades on a logarithmic axis (more decades get a tick every k-th one)
MAX_DECADE_TICKS = 6

#: words (and units) for the columns of the built-in sweep tasks; any other column is shown by its name
LABELS: dict[str, str] = {
    "tv_truth": "TV to the truth", "tv_oracle": "TV to the oracle", "tv": "TV to the truth",
    "tv_bound": "certified TV bound", "queries": "queries", "cert_queries": "certificate queries",
    "seconds": "seconds per row", "learn_seconds": "learning time (s)", "max_rank": "largest logit rank",
    "dim": "learned dimension", "accepted": "accepted (1 = yes)", "accepted_by_certificate": "accepted by certificate",
    "eps_avg_measured": "measured ε_avg", "kl": "KL (nats)", "alpha": "α", "α": "α",
    "xi": "oracle noise ξ", "d": "hidden dimension d", "V": "vocabulary size V", "T": "horizon T",
    "epsilon": "target ε", "eps_avg": "ε_avg", "rank": "rank budget", "perturbation": "perturbation size",
    "rank_tol": "rank tolerance", "n": "histories = futures n", "learner": "learner",
}
#: short names of parameters in panel titles, legends and filters
_SYMBOLS = {"xi": "ξ", "epsilon": "ε", "eps_avg": "ε_avg", "alpha": "α"}


def axis_label(column: str) -> str:
    """The words for ``column`` on an axis or a colour bar (:data:`LABELS`, else the name with spaces).

    >>> axis_label("tv_truth"), axis_label("my_metric")
    ('TV to the truth', 'my metric')
    """
    return math_symbols(LABELS.get(column, str(column).replace("_", " ")))


def filter_rows(df, where: Mapping | None):
    """Rows of ``df`` whose columns equal ``where``'s values (values compared as strings when types differ)."""
    if not where:
        return df
    mask = np.ones(len(df), dtype=bool)
    for key, value in where.items():
        if key not in df.columns:
            raise ValueError(f"where key {key!r} is not a column; columns are {sorted(map(str, df.columns))}")
        col = df[key]
        mask &= (col == value).to_numpy() | (col.astype(str) == str(value)).to_numpy()
    return df[mask]


def _check_column(df, name: str, what: str):
    if name not in df.columns:
        allowed = df.attrs.get("config_columns", []) + df.attrs.get("metric_columns", []) + ["seconds"]
        raise ValueError(f"{what} must be a column of the sweep, one of {allowed}; got {name!r}")


def _log_scale(values, *, axis: str) -> str:
    """"log" when the positive values span a factor >= 10, or (x only) form a geometric grid of >= 3 values.

    Zeros do not count (they are drawn apart on a log axis); any negative value gives "linear".
    Examples: TV from 1e-16 to 0.9 → log; ξ = 0, 1e-6, 1e-3 → log (0 apart); d = 2, 4, 8 → log;
    d = 2, 3, 4, 6 → linear.
    """
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    pos = v[v > 0]
    if (v < 0).any() or np.unique(pos).size < 2:
        return "linear"
    if pos.max() / pos.min() >= 10:
        return "log"
    if axis == "x":
        u = np.unique(pos)
        ratios = u[1:] / u[:-1] if u.size >= 3 else np.array([])
        if ratios.size >= 2 and ratios.min() >= 1.5 and ratios.max() / ratios.min() <= 1.25:
            return "log"
    return "linear"


@dataclass(frozen=True)
class _Axis:
    """One axis: its scale, the range of its positive values and, on a log axis holding zeros, where 0 is drawn."""

    scale: str
    low: float = 1.0
    high: float = 1.0
    zero: float | None = None

    def place(self, values) -> np.ndarray:
        """Where ``values`` are drawn: themselves, except 0 (or less) on a log axis, drawn at :attr:`zero`."""
        v = np.asarray(values, dtype=float)
        if self.scale != "log" or self.zero is None:
            return v
        return np.where(v <= 0, self.zero, v)

    def apart(self, values) -> np.ndarray:
        """Whether each value is drawn apart from the line (a zero on a log axis)."""
        v = np.asarray(values, dtype=float)
        return (v <= 0) if (self.scale == "log" and self.zero is not None) else np.zeros(v.shape, dtype=bool)


def _axis_plan(values, scale: str, axis: str, what: str) -> _Axis:
    """The :class:`_Axis` of ``values`` for ``scale`` ("auto", "linear" or "log")."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    scale = _log_scale(v, axis=axis) if scale == "auto" else scale
    if scale == "linear":
        return _Axis("linear")
    if (v < 0).any():
        raise ValueError(f"{axis}scale='log' cannot show the negative values of {what} (smallest {v.min():g}); "
                         f"use {axis}scale='linear'")
    pos = v[v > 0]
    if pos.size == 0:
        raise ValueError(f"{axis}scale='log' needs a positive value of {what}; got only zeros")
    low, high = float(pos.min()), float(pos.max())
    zero = None
    if (v == 0).any():  # a decade (more on a wide axis) below the smallest value, beyond a break
        gap = max(1.0, 0.2 * math.log10(high / low))
        zero = low / 10**gap
    return _Axis("log", low, high, zero)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def _tick_text(v: float) -> str:
    """A tick label on a log axis: "0", a power of ten as 10^k, else the number."""
    if v == 0:
        return "0"
    k = math.log10(v)
    return f"$10^{{{round(k)}}}$" if abs(k - round(k)) < 1e-9 else _fmt(v)


def _label(keys: Sequence[str], values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{k}={_fmt(v)}" for k, v in zip(keys, values))


def _symbolic(text: str) -> str:
    """``xi=0.001`` → ``ξ = 0.001``: the parameters that have a symbol written with it."""
    for key, symbol in _SYMBOLS.items():
        text = re.sub(rf"(?<![A-Za-z_]){key}=", f"{symbol} = ", text)
    return text


def _pretty(text: str) -> str:
    """:func:`_symbolic`, in mathtext."""
    return math_symbols(_symbolic(text))


def _file_part(text: str) -> str:
    """``text`` with anything but letters, digits and ``.=-+`` replaced by ``-`` (a portable file name)."""
    return re.sub(r"[^A-Za-z0-9.=+-]+", "-", text).strip("-")


def _stats(values):
    """(n, median, low, high): [min, max] below IQR_MIN_SEEDS values, the IQR from there up."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0, np.nan, np.nan, np.nan
    if v.size < IQR_MIN_SEEDS:
        return v.size, float(np.median(v)), float(v.min()), float(v.max())
    q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return v.size, float(q50), float(q25), float(q75)


def _facets(rows, config_cols, x, hue, col, row, pool) -> tuple[list, list]:
    """The fields that get columns and rows of panels (given, else chosen: most values → columns)."""
    taken = {x, hue, col, row, *pool} - {None}
    varying = [c for c in config_cols if c not in taken and rows[c].nunique(dropna=False) > 1]
    cols = [col] if col else []
    rws = [row] if row else []
    if not col and varying:
        pick = max(varying, key=lambda c: rows[c].nunique())
        cols, varying = [pick], [c for c in varying if c != pick]
    rws += varying
    return cols, rws


def _heading(title: str | None, sweep: str, where: Mapping) -> str:
    """The title, then each filter it does not already state (a title saying "ξ = 0" gets no "xi=0")."""
    title = title or sweep

    def bare(text: str) -> str:
        return re.sub(r"\s", "", text)

    filters = [f"{k}={_fmt(v)}" for k, v in where.items()]
    missing = [f for f in filters if bare(f) not in bare(title) and bare(_symbolic(f)) not in bare(title)]
    return "; ".join(t for t in (title, ", ".join(missing)) if t)


@paper_style
def plot_sweep(df, *, x: str, y: str, hue: str | None = None, col: str | None = None, row: str | None = None,
               pool: Sequence[str] = (), heatmap: bool = False, where: Mapping | None = None, out_dir,
               name: str | None = None, title: str | None = None, xscale: str = "auto", yscale: str = "auto"
               ) -> tuple[Path, Path]:
    """Draw metric ``y`` against parameter ``x``: a line per ``hue`` value, a panel per value of the others.

    Parameters
    ----------
    df : DataFrame from :func:`logitrank.verify.experiments.sweep.load` (done and failed rows)
    x, y, hue : column names: a parameter on x, a metric on y, a parameter with one line per value
    col, row : parameters with one column / row of panels per value. Parameters that vary among the
        rows and are not named anywhere are faceted too: the one with the most values gets the
        columns (unless ``col`` is given), the rest the rows (their combinations)
    pool : parameters to pool over instead of faceting (each point then mixes their values)
    heatmap : colour = median of ``y`` over (x, hue) (``hue`` required; every other varying
        parameter must be fixed by ``where``)
    where : keep only rows with these values (named in the title, unless it states them, and the file name)
    out_dir : folder of ``<name>.png`` and ``<name>.pdf``
    name : file stem (default ``<sweep>_<y>_vs_<x>[_by_<hue>][_heatmap][_<key>=<value>...]``)
    title : figure title (default the sweep's name); filters it does not state are added to it
    xscale, yscale : "auto" (from the data's range, see :func:`_log_scale`), "linear" or "log"

    Returns
    -------
    (png path, pdf path)
    """
    import pandas as pd

    _check_arguments(df, x=x, y=y, hue=hue, col=col, row=row, pool=pool, heatmap=heatmap, xscale=xscale,
                     yscale=yscale)
    where = dict(where or {})
    rows = filter_rows(df, where)
    if rows[rows["status"] == "done"].empty:
        raise ValueError(f"no finished rows to plot (where={where})")
    rows = rows.assign(_y=pd.to_numeric(rows[y], errors="coerce"))
    sweep = str(rows["sweep"].iloc[0]) if "sweep" in rows else "sweep"
    name = name if name is not None else _default_name(sweep, x, y, hue, heatmap, where)
    cols, rws = _facets(rows, df.attrs.get("config_columns", []), x, hue, col, row, pool)
    heading = _pretty(_heading(title, sweep, where))
    if heatmap:
        if cols or rws:
            raise ValueError(f"a heatmap shows one (x, hue) table, but {cols + rws} also vary; fix them with "
                             f"where (--where KEY=VALUE) or plot lines instead")
        return save_figure(_heatmap(rows, x, y, hue, heading), out_dir, name)
    xs = pd.to_numeric(rows[x], errors="coerce").to_numpy(dtype=float)
    xa = _axis_plan(xs, xscale, "x", x)
    ya = _axis_plan(_y_extent(rows, x, hue, cols + rws + list(pool)), yscale, "y", y)
    col_keys, row_keys = _panel_keys(rows, cols, rws)
    fig, axes = paper_figure("two" if len(col_keys) > 1 else "one", rows=len(row_keys), cols=len(col_keys),
                             height=(2.5 if len(row_keys) == 1 else 1.9 * len(row_keys) + 0.4),
                             sharex=True, sharey=True)
    axes = np.atleast_1d(axes).reshape(len(row_keys), len(col_keys))
    ns, legend = _draw_panels(axes, rows, (x, y, hue), (xa, ya), (cols, col_keys), (rws, row_keys))
    _scale_axes(axes, xa, xs, ya)
    fig.suptitle(f"{heading}\n{_subtitle(y, ns, pool, xa, ya, x)}", fontsize=7)
    _finish_panels(fig, axes, xs, legend, xa)
    return save_figure(fig, out_dir, name)


def _y_extent(rows, x: str, hue: str | None, groups: list) -> np.ndarray:
    """Every value a point or a bar of the figure reaches on y (medians and bar ends per drawn cell)."""
    done = rows[rows["status"] == "done"]
    keys = [k for k in [x, hue, *groups] if k]
    out = []
    for _, g in done.groupby(keys, sort=False, dropna=False):
        n, med, lo, hi = _stats(g["_y"])
        if n:
            out += [med] + ([lo, hi] if n >= 2 else [])
    if "accepted" in done.columns:
        out += done.loc[_numeric(done["accepted"]) == 0, "_y"].tolist()
    return np.asarray(out, dtype=float)


def _check_arguments(df, *, x, y, hue, col, row, pool, heatmap, xscale, yscale) -> None:
    """:func:`plot_sweep`'s checks of its column names, scales and heatmap before anything is drawn."""
    for c, what in ((x, "x"), (y, "y"), (hue, "hue"), (col, "col"), (row, "row"), *((p, "pool") for p in pool)):
        if c is not None:
            _check_column(df, c, what)
    for key, scale in (("xscale", xscale), ("yscale", yscale)):
        if scale not in SCALES:
            raise ValueError(f"{key} must be one of {list(SCALES)}; got {scale!r}")
    if heatmap and hue is None:
        raise ValueError("heatmap=True needs hue, the second parameter (rows of the heatmap)")


def _default_name(sweep: str, x: str, y: str, hue: str | None, heatmap: bool, where: dict) -> str:
    """``<sweep>_<y>_vs_<x>[_by_<hue>][_heatmap][_<key>=<value>...]``, a portable file stem."""
    name = f"{sweep}_{y}_vs_{x}" + (f"_by_{hue}" if hue else "") + ("_heatmap" if heatmap else "")
    name += "".join(f"_{_file_part(f'{k}={_fmt(v)}')}" for k, v in where.items())
    return name


def _panel_keys(rows, cols: list, rws: list) -> tuple[list, list]:
    """The values of the column field and of the row fields, one panel each; at most :data:`MAX_PANELS` panels."""
    col_keys = sorted(rows.groupby(cols[0]).groups) if cols else [None]
    row_keys = sorted(rows.groupby(rws if len(rws) > 1 else rws[0]).groups) if rws else [None]
    if len(col_keys) * len(row_keys) > MAX_PANELS:
        raise ValueError(f"{len(col_keys) * len(row_keys)} panels (more than {MAX_PANELS}): {cols + rws} vary besides "
                         f"x and hue; fix some with where (--where KEY=VALUE), or pool over them (--pool)")
    return col_keys, row_keys


def _panel_rows(rows, cols: list, ck, rws: list, rk):
    """The rows of the panel at column value ``ck`` and row value(s) ``rk``."""
    panel = rows
    for keys, key in ((cols, ck), (rws, rk)):
        if keys:
            key = key if isinstance(key, tuple) else (key,)
            for k, v in zip(keys, key):
                panel = panel[panel[k] == v]
    return panel


def _draw_panels(axes, rows, names: tuple, planes: tuple, columns: tuple, panel_rows: tuple) -> tuple[list, dict]:
    """Every panel drawn, titled and labelled; ``names`` = (x, y, hue), ``planes`` = (x axis, y axis),
    ``columns`` and ``panel_rows`` = (fields, values) → (n's, legend)."""
    (x, y, hue), (cols, col_keys), (rws, row_keys) = names, columns, panel_rows
    hues = sorted(rows[hue].unique()) if hue else [None]
    colours = {h: PALETTE[i % len(PALETTE)] for i, h in enumerate(hues)}
    ns, legend = [], {}
    for i, rk in enumerate(row_keys):
        for j, ck in enumerate(col_keys):
            ax = axes[i, j]
            panel = _panel_rows(rows, cols, ck, rws, rk)
            ns += _draw_panel(ax, panel, (x, hue), planes, (hues, colours), legend)
            label = "; ".join(t for t in (_label(rws, rk) if rws else "", _label(cols, ck) if cols else "") if t)
            if label:
                ax.set_title(_pretty(label), fontsize=7)
            if i == len(row_keys) - 1:
                ax.set_xlabel(axis_label(x))
            if j == 0:
                ax.set_ylabel(axis_label(y))
    return ns, legend


def _decade_ticks(low: float, high: float) -> np.ndarray:
    """Powers of ten covering [low, high], every k-th decade so that at most :data:`MAX_DECADE_TICKS` show."""
    a, b = math.floor(math.log10(low) + 1e-9), math.ceil(math.log10(high) - 1e-9)
    step = max(1, math.ceil((b - a + 1) / MAX_DECADE_TICKS))
    return 10.0 ** np.arange(b, a - 1, -step)[::-1]


def _log_ticks(ax, which: str, plane: _Axis, data=None) -> None:
    """Limits and ticks of a log axis: the data's few values (x) or spaced decades, and "0" at the zero slot."""
    ticks = np.unique(data[np.isfinite(data) & (data > 0)]) if data is not None else np.array([])
    if ticks.size == 0 or ticks.size > 8:
        ticks = _decade_ticks(plane.low, plane.high)
    start = plane.zero if plane.zero is not None else min(plane.low, ticks.min())
    pad = 10 ** (0.08 * max(1.0, math.log10(max(plane.high, ticks.max()) / start)))
    lim = (start / pad, max(plane.high, ticks.max()) * pad)
    ticks = ticks[(ticks >= lim[0]) & (ticks <= lim[1])]
    (ax.set_xlim if which == "x" else ax.set_ylim)(*lim)
    if ticks.size == 0:  # a forced log axis inside one decade: matplotlib's own ticks
        return
    if plane.zero is not None:
        ticks = np.concatenate([[plane.zero], ticks])
    labels = ["0" if plane.zero is not None and t == plane.zero else _tick_text(t) for t in ticks]
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xticks if which == "x" else ax.set_yticks)(ticks, labels)
    axis.set_minor_locator(NullLocator())
    if plane.zero is not None:  # the break between the zero slot and the smallest positive value
        at = math.sqrt(plane.zero * plane.low)
        line = ax.axvline if which == "x" else ax.axhline
        line(at, color="0.5", lw=0.6, ls=(0, (1, 2)), zorder=1)


def _scale_axes(axes, xa: _Axis, xs, ya: _Axis) -> None:
    """Both axes' scales, limits and ticks (shared by every panel; break lines drawn in each)."""
    ax0 = axes[0, 0]
    ax0.set_xscale(xa.scale)
    ax0.set_yscale(ya.scale)
    for ax in axes.flat:
        if xa.scale == "log":
            _log_ticks(ax, "x", xa, xs)
        if ya.scale == "log":
            _log_ticks(ax, "y", ya)


def _subtitle(y: str, ns: list, pool: Sequence[str], xa: _Axis, ya: _Axis, x: str) -> str:
    """What a point and its bar show, the seeds per point (``ns``), what is pooled and where 0 is drawn."""
    big = [n for n in ns if n >= 2]
    if not big:
        shown = "one seed per point, no bars"
    else:
        kind = "[min, max]" if max(big) < IQR_MIN_SEEDS else "IQR" if min(big) >= IQR_MIN_SEEDS else \
            f"[min, max] below {IQR_MIN_SEEDS} seeds, IQR from {IQR_MIN_SEEDS}"
        shown = f"median over seeds, bars {kind}" + ("" if len(big) == len(ns) else " (none at one seed)")
        shown += f", n = {ns[0]} seeds per point" if len(set(ns)) == 1 else ", n per point beside it"
    pooled = f"; pooled over {', '.join(pool)}" if pool else ""
    zeros = [what for what, plane in ((math_symbols(_SYMBOLS.get(x, x)), xa), (axis_label(y), ya))
             if plane.zero is not None]
    apart = f"\n0 drawn apart, past the dotted break, on the log axis of {' and of '.join(zeros)}" if zeros else ""
    return shown + pooled + apart


def _finish_panels(fig, axes, xs, legend: dict, xa: _Axis) -> None:
    """The house style on the panels, and one legend beside them when there are several."""
    ax0 = axes[0, 0]
    integer_x = bool(np.isfinite(xs).all() and np.allclose(xs, np.round(xs))) and xa.scale == "linear"
    if len(axes.flat) == 1:
        finish(ax0, integer_x=integer_x)
    else:
        finish(ax0, integer_x=integer_x, legend=False)
        if legend:
            order = sorted(legend, key=lambda lab: lab.startswith(("failed", "not accepted")))  # hues first
            fig.legend([legend[lab] for lab in order], order, loc="outside right upper")


def _points(done, x: str) -> np.ndarray:
    """(k, 5) array of (x, n, median, low, high) per x value of ``done`` with a finite y."""
    pts = []
    for xv, g in done.groupby(x, sort=True):
        n, med, lo, hi = _stats(g["_y"])
        if n:
            pts.append((float(xv), n, med, lo, hi))
    return np.asarray(pts, dtype=float).reshape(-1, 5)


def _draw_series(ax, pts: np.ndarray, planes: tuple, colour: str, label: str | None):
    """One hue's medians: a line through the points on the axes' scale, points at a zero slot as unjoined markers,
    bars only where a point has >= 2 seeds. Returns the legend handle."""
    xa, ya = planes
    px, pn, pm, pl, ph = pts.T
    X, Y = xa.place(px), ya.place(pm)
    apart = xa.apart(px) | ya.apart(pm)
    start = 0
    for k in range(1, len(X) + 1):  # the line, broken at every point drawn apart
        if k == len(X) or apart[k] != apart[start]:
            if not apart[start] and k - start > 1:
                ax.plot(X[start:k], Y[start:k], color=colour, lw=1.1, zorder=2)
            start = k
    ax.plot(X[~apart], Y[~apart], ls="none", marker="o", ms=3, color=colour, zorder=3)
    ax.plot(X[apart], Y[apart], ls="none", marker="D", ms=3.2, mfc="white", mec=colour, mew=0.9, zorder=3)
    bars = pn >= 2
    if bars.any():
        low, high = ya.place(pl[bars]), ya.place(ph[bars])
        ax.errorbar(X[bars], Y[bars], yerr=[Y[bars] - low, high - Y[bars]], fmt="none", ecolor=colour, capsize=2,
                    elinewidth=0.8, zorder=2)
    return Line2D([], [], color=colour, marker="o", ms=3, lw=1.1, label=label)


def _draw_marks(ax, group, x: str, planes: tuple, colour: str, legend: dict) -> None:
    """Not-accepted rows as hollow circles and failed rows as × (with their count) at the foot of the axes."""
    xa, ya = planes
    done = group[group["status"] == "done"]
    if "accepted" in done.columns:
        rejected = done[_numeric(done["accepted"]) == 0]
        if len(rejected):
            art = ax.scatter(xa.place(rejected[x].astype(float)), ya.place(rejected["_y"]), s=14, facecolors="none",
                             edgecolors=colour, linewidths=0.8, zorder=3,
                             label="_" if "not accepted" in legend else "not accepted")
            legend.setdefault("not accepted", art)
    failed = group[group["status"] == "failed"]
    if len(failed):
        counts = failed.groupby(x).size()
        xf = xa.place(counts.index.astype(float))
        art = ax.scatter(xf, np.full(len(counts), 0.03), transform=ax.get_xaxis_transform(), marker="x", s=18,
                         color=colour, zorder=4, clip_on=False, label="_" if "failed" in legend else "failed")
        legend.setdefault("failed", art)
        for xv, k in zip(xf, counts.to_numpy()):
            ax.annotate(f"{k}", (float(xv), 0.03), xycoords=ax.get_xaxis_transform(), xytext=(3, 2),
                        textcoords="offset points", fontsize=5, color=colour)


def _draw_panel(ax, panel, names: tuple, planes: tuple, palette: tuple, legend: dict) -> list[int]:
    """Median with its bar per (hue, x), failed rows as × at the foot, not-accepted rows hollow; the n's drawn."""
    (x, hue), (hues, colours) = names, palette
    xa, ya = planes
    ns, drawn = [], {}
    for h in hues:
        group = panel[panel[hue] == h] if hue else panel
        label = f"{hue}={_fmt(h)}" if hue else None
        pts = _points(group[group["status"] == "done"], x)
        if len(pts):
            handle = _draw_series(ax, pts, planes, colours[h], label)
            if label:
                ax.add_line(handle)  # no data: the key of this hue in the axes' own legend
                legend.setdefault(label, handle)
            ns += [int(v) for v in pts[:, 1]]
            drawn[h] = pts
        _draw_marks(ax, group, x, planes, colours[h], legend)
    if ns and len(set(ns)) > 1:  # unequal seeds per point: say n beside every point (one text row per hue)
        for k, (h, pts) in enumerate(drawn.items()):
            for xv, n, med in pts[:, :3]:
                ax.annotate(f"n={int(n)}", (float(xa.place([xv])[0]), float(ya.place([med])[0])),
                            xytext=(4, -7 - 6 * k), textcoords="offset points", fontsize=5, color=colours[h])
    return ns


def _numeric(series):
    import pandas as pd

    return pd.to_numeric(series, errors="coerce")


def _cell_texts(table, failed) -> np.ndarray:
    """Each heatmap cell's text: its median (2 significant digits) and, when some of its rows failed, how many."""
    out = np.empty(table.shape, dtype=object)
    for i, h in enumerate(table.index):
        for j, xv in enumerate(table.columns):
            v, k = table.iat[i, j], int(failed.get((h, xv), 0))
            out[i, j] = (f"{v:.2g}" if np.isfinite(v) else "") + (f"\n{k} failed" if k else "")
    return out


def _luminance(rgb) -> float:
    """Relative luminance of an sRGB colour (WCAG 2)."""
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _ink(rgb) -> str:
    """Black or white, whichever contrasts more with the background ``rgb`` (WCAG contrast ratio)."""
    lum = _luminance(rgb)
    return "black" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "white"


def _annotate(ax, texts: np.ndarray, values: np.ndarray, cmap, norm) -> None:
    """Write ``texts`` on the heatmap cells, each in the ink that reads on its cell's colour."""
    with np.errstate(invalid="ignore", divide="ignore"):
        faces = cmap(norm(np.ma.masked_invalid(values)))  # (rows, cols, 4), the "bad" colour where masked
    for (i, j), text in np.ndenumerate(texts):
        if text:
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=5.5, color=_ink(faces[i, j]))


def _heatmap(rows, x, y, hue, heading):
    """Median of ``y`` over (hue, x) as a seaborn heatmap: values written in the ink that reads on each cell,
    a log colour scale when the values span decades, a colour bar spanning every value, failures counted."""
    import seaborn as sns
    from matplotlib.colors import LogNorm, Normalize

    done = rows[rows["status"] == "done"]
    table = done.groupby([hue, x])["_y"].median().unstack(x).sort_index().sort_index(axis=1)  # (hues, xs)
    failed = rows[rows["status"] == "failed"].groupby([hue, x]).size()
    finite = table.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    log = _log_scale(finite, axis="y") == "log"
    norm = LogNorm(finite[finite > 0].min(), finite.max()) if log else Normalize(finite.min(), finite.max())
    fig, ax = paper_figure("one", height=max(2.5, 0.35 * len(table.index) + 1.2))
    cmap = sns.color_palette("viridis", as_cmap=True).with_extremes(bad="0.85")
    label = f"median {axis_label(y)}" + (" (log scale)" if log else "")
    sns.heatmap(table, ax=ax, cmap=cmap, norm=norm, annot=False, linewidths=0.4, linecolor="white",
                cbar_kws={"label": label})
    _annotate(ax, _cell_texts(table, failed), table.to_numpy(dtype=float), cmap, norm)
    ax.invert_yaxis()  # the smallest hue at the foot, as on a line plot
    ax.grid(False)
    ax.set_xticklabels([_fmt(v) for v in table.columns], rotation=0)
    ax.set_yticklabels([_fmt(v) for v in table.index], rotation=0)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(hue))
    note = "; grey: 0, below the log colour scale" if log and (finite <= 0).any() else ""
    ax.set_title(f"{heading}\nmedian over seeds per cell{note}", fontsize=7)
    return fig
