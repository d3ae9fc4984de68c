"""Figures of a sweep: one metric against one parameter, a line per ``hue`` value, a panel per value of the rest.

What a point shows: the median over the seeds of one cell, with a bar over their [min, max] when
the cell has fewer than :data:`IQR_MIN_SEEDS` seeds and over the IQR from that many up (a
quartile of three numbers says little); the seeds per point are given once when equal, beside
each point otherwise. Nothing is pooled silently: every parameter that varies among the plotted
rows and is on neither axis nor the hue gets its own panels (``col``, ``row``, chosen when not
given); pooling is asked for by name (``pool``). Failed rows are drawn as × at the foot of the
axes; rows of the approximate learner that did not accept (``accepted == 0``) as hollow points.
Axes are logarithmic when the data ask for it (:func:`_log_scale`), unless ``xscale``/``yscale``
say otherwise. Filters (``where``) appear in the title and the file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullLocator

from .._metrics import IQR_MIN_SEEDS
from ._common import save_figure
from ._style import PALETTE, finish, math_symbols, paper_figure, paper_style

__all__ = ["filter_rows", "plot_sweep"]

SCALES = ("auto", "linear", "log")
#: most panels one figure draws; more must be narrowed with ``where``
MAX_PANELS = 24


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
    """"log" when positive values span a factor >= 10, or (x only) form a geometric grid of >= 3 values.

    Zeros among positive values spanning decades give "symlog" (linear near 0). Examples: TV from
    1e-16 to 0.9 → log; d = 2, 4, 8 → log; d = 2, 3, 4, 6 → linear.
    """
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    pos = v[v > 0]
    if v.size < 2 or (v < 0).any() or pos.size < 2:
        return "linear"
    spans = pos.max() / pos.min() >= 10
    if axis == "x" and not spans:
        u = np.unique(pos)
        ratios = u[1:] / u[:-1] if u.size >= 3 else np.array([])
        spans = ratios.size >= 2 and ratios.min() >= 1.5 and ratios.max() / ratios.min() <= 1.25
    if not spans:
        return "linear"
    return "log" if pos.size == v.size else "symlog"


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def _label(keys: Sequence[str], values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{k}={_fmt(v)}" for k, v in zip(keys, values))


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


def _set_scale(ax, axis: str, scale: str, values) -> None:
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if scale == "symlog":
        pos = np.asarray(values, dtype=float)
        pos = pos[np.isfinite(pos) & (pos > 0)]
        setter("symlog", linthresh=float(pos.min()))
    else:
        setter(scale)


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
    where : keep only rows with these values (named in the title and the file name)
    out_dir : folder of ``<name>.png`` and ``<name>.pdf``
    name : file stem (default ``<sweep>_<y>_vs_<x>[_by_<hue>][_heatmap][_<key>=<value>...]``)
    title : figure title (default the sweep's name); the filters are added to it
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
    done = rows[rows["status"] == "done"]
    if done.empty:
        raise ValueError(f"no finished rows to plot (where={where})")
    rows = rows.assign(_y=pd.to_numeric(rows[y], errors="coerce"))
    sweep = str(rows["sweep"].iloc[0]) if "sweep" in rows else "sweep"
    filters = ", ".join(f"{k}={_fmt(v)}" for k, v in where.items())
    if name is None:
        name = _default_name(sweep, x, y, hue, heatmap, where)
    config_cols = df.attrs.get("config_columns", [])
    cols, rws = _facets(rows, config_cols, x, hue, col, row, pool)
    heading = "; ".join(t for t in (title or sweep, filters) if t)
    if heatmap:
        if cols or rws:
            raise ValueError(f"a heatmap shows one (x, hue) table, but {cols + rws} also vary; fix them with "
                             f"where (--where KEY=VALUE) or plot lines instead")
        fig = _heatmap(rows, x, y, hue, heading)
        return save_figure(fig, out_dir, name)
    col_keys, row_keys = _panel_keys(rows, cols, rws)
    fig, axes = paper_figure("two" if len(col_keys) > 1 else "one", rows=len(row_keys), cols=len(col_keys),
                             height=(2.5 if len(row_keys) == 1 else 1.9 * len(row_keys) + 0.4),
                             sharex=True, sharey=True)
    axes = np.atleast_1d(axes).reshape(len(row_keys), len(col_keys))
    ns, legend = _draw_panels(axes, rows, x, y, hue, (cols, col_keys), (rws, row_keys))
    xs = pd.to_numeric(rows[x], errors="coerce").to_numpy(dtype=float)
    ys = rows.loc[rows["status"] == "done", "_y"].to_numpy(dtype=float)
    xscale = _log_scale(xs, axis="x") if xscale == "auto" else xscale
    yscale = _log_scale(ys, axis="y") if yscale == "auto" else yscale
    ax0 = axes[0, 0]
    _scale_axes(ax0, xscale, xs, yscale, ys)
    fig.suptitle(f"{heading}\n{_subtitle(y, ns, pool)}", fontsize=7)
    _finish_panels(fig, axes, xs, legend)
    return save_figure(fig, out_dir, name)


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


def _draw_panels(axes, rows, x: str, y: str, hue: str | None, columns: tuple, panel_rows: tuple) -> tuple[list, dict]:
    """Every panel drawn, titled and labelled; ``columns`` and ``panel_rows`` are (fields, values) → (n's, legend)."""
    (cols, col_keys), (rws, row_keys) = columns, panel_rows
    hues = sorted(rows[hue].unique()) if hue else [None]
    colours = {h: PALETTE[i % len(PALETTE)] for i, h in enumerate(hues)}
    ns, legend = [], {}
    for i, rk in enumerate(row_keys):
        for j, ck in enumerate(col_keys):
            ax = axes[i, j]
            panel = _panel_rows(rows, cols, ck, rws, rk)
            ns += _draw_panel(ax, panel, x, hue, hues, colours, legend)
            label = "; ".join(t for t in (_label(rws, rk) if rws else "", _label(cols, ck) if cols else "") if t)
            if label:
                ax.set_title(math_symbols(label.replace("xi=", "ξ = ").replace("epsilon=", "ε = ")), fontsize=7)
            if i == len(row_keys) - 1:
                ax.set_xlabel(x)
            if j == 0:
                ax.set_ylabel(y)
    return ns, legend


def _scale_axes(ax0, xscale: str, xs, yscale: str, ys) -> None:
    """Both axes' scales (shared by every panel), and x ticks at the data's few values on a non-linear x."""
    _set_scale(ax0, "x", xscale, xs)
    _set_scale(ax0, "y", yscale, ys)
    if xscale != "linear":
        ticks = np.unique(xs[np.isfinite(xs)])
        if ticks.size <= 8:
            ax0.set_xticks(ticks, [_fmt(t) for t in ticks])
            ax0.xaxis.set_minor_locator(NullLocator())


def _subtitle(y: str, ns: list, pool: Sequence[str]) -> str:
    """What a point and its bar show, the seeds per point (``ns``) and what is pooled."""
    spread = "[min, max]" if max(ns, default=0) < IQR_MIN_SEEDS else "IQR" if min(ns, default=0) >= IQR_MIN_SEEDS else \
        f"[min, max] below {IQR_MIN_SEEDS} seeds, IQR from {IQR_MIN_SEEDS}"
    n_text = f"n = {ns[0]} seeds per point" if len(set(ns)) == 1 else "n per point beside it"
    pooled = f"; pooled over {', '.join(pool)}" if pool else ""
    return f"median of {y}, bars {spread}, {n_text}{pooled}"


def _finish_panels(fig, axes, xs, legend: dict) -> None:
    """The house style on the panels, and one legend beside them when there are several."""
    ax0 = axes[0, 0]
    integer_x = bool(np.isfinite(xs).all() and np.allclose(xs, np.round(xs)))
    if len(axes.flat) == 1:
        finish(ax0, integer_x=integer_x)
    else:
        finish(ax0, integer_x=integer_x, legend=False)
        if legend:
            order = sorted(legend, key=lambda lab: lab.startswith(("failed", "not accepted")))  # hues first
            fig.legend([legend[lab] for lab in order], order, loc="outside right upper")


def _draw_panel(ax, panel, x, hue, hues, colours, legend) -> list[int]:
    """Median with its bar per (hue, x), failed rows as × at the foot, not-accepted rows hollow; the n's drawn."""
    ns = []
    groups = {h: (panel[panel[hue] == h] if hue else panel) for h in hues}
    for h, group in groups.items():
        colour = colours[h]
        label = f"{hue}={_fmt(h)}" if hue else None
        done = group[group["status"] == "done"]
        pts = []
        for xv, g in done.groupby(x, sort=True):
            n, med, lo, hi = _stats(g["_y"])
            if n:
                pts.append((float(xv), n, med, lo, hi))
        if pts:
            px, pn, pm, pl, ph = map(np.asarray, zip(*pts))
            bars = ax.errorbar(px, pm, yerr=[pm - pl, ph - pm], color=colour, marker="o", ms=3, capsize=2, lw=1.1,
                               elinewidth=0.8, label=label)
            if label and label not in legend:
                legend[label] = bars
            ns += [int(v) for v in pn]
        if "accepted" in done.columns:
            rejected = done[_numeric(done["accepted"]) == 0]
            if len(rejected):
                art = ax.scatter(rejected[x].astype(float), rejected["_y"], s=14, facecolors="none", edgecolors=colour,
                                 linewidths=0.8, zorder=3, label="_" if "not accepted" in legend else "not accepted")
                legend.setdefault("not accepted", art)
        failed = group[group["status"] == "failed"]
        if len(failed):
            counts = failed.groupby(x).size()
            art = ax.scatter(counts.index.astype(float), np.full(len(counts), 0.03), transform=ax.get_xaxis_transform(),
                             marker="x", s=18, color=colour, zorder=4, clip_on=False,
                             label="_" if "failed" in legend else "failed")
            legend.setdefault("failed", art)
            for xv, k in counts.items():
                ax.annotate(f"{k}", (float(xv), 0.03), xycoords=ax.get_xaxis_transform(), xytext=(3, 2),
                            textcoords="offset points", fontsize=5, color=colour)
    if ns and len(set(ns)) > 1:  # unequal seeds per point: say n beside every point (one text row per hue)
        for k, (h, group) in enumerate(groups.items()):
            done = group[group["status"] == "done"]
            for xv, g in done.groupby(x, sort=True):
                n, med, _, _ = _stats(g["_y"])
                if n:
                    ax.annotate(f"n={n}", (float(xv), med), xytext=(4, -7 - 6 * k), textcoords="offset points",
                                fontsize=5, color=colours[h])
    return ns


def _numeric(series):
    import pandas as pd

    return pd.to_numeric(series, errors="coerce")


def _heatmap(rows, x, y, hue, heading):
    done = rows[rows["status"] == "done"]
    table = done.groupby([hue, x])["_y"].median().unstack(x)  # (hues, xs)
    failed = rows[rows["status"] == "failed"].groupby([hue, x]).size()
    fig, ax = paper_figure("one")
    data = table.to_numpy(dtype=float)
    scale = _log_scale(data.ravel(), axis="y")
    log = scale == "log"
    im = ax.imshow(np.log10(data) if log else data, origin="lower", aspect="auto", cmap="viridis")
    ax.grid(False)
    ax.set_xticks(range(table.shape[1]), [_fmt(v) for v in table.columns])
    ax.set_yticks(range(table.shape[0]), [_fmt(v) for v in table.index])
    ax.set_xlabel(x)
    ax.set_ylabel(hue)
    fig.colorbar(im, ax=ax, label=f"log10 median {y}" if log else f"median {y}")
    for (i, j), v in np.ndenumerate(data):
        k = int(failed.get((table.index[i], table.columns[j]), 0))
        text = (f"{v:.2g}" if np.isfinite(v) else "") + (f"\n{k} failed" if k else "")
        if text:
            ax.text(j, i, text, ha="center", va="center", fontsize=5.5, color="w" if not k else "#D55E00")
    ax.set_title(heading, fontsize=7)
    return fig
