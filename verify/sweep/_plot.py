"""Figures of a sweep: median over seeds with an IQR band per hue, or a heatmap of two parameters."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._figures import save_figure
from .._style import finish, paper_figure, paper_style

__all__ = ["filter_rows", "plot_sweep"]


def _spans_decades(values) -> bool:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return v.size >= 2 and (v > 0).all() and v.max() / v.min() >= 10


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


@paper_style
def plot_sweep(df, *, x: str, y: str, hue: str | None = None, heatmap: bool = False, where: Mapping | None = None,
               out_dir, name: str | None = None, title: str | None = None) -> tuple[Path, Path]:
    """Draw metric ``y`` against parameter ``x``: one line per ``hue`` value (median, IQR band), or a heatmap.

    Rows (cell × seed, ``status == "done"``, filtered by ``where``) are pooled per (x, hue): over
    seeds and over every parameter not on an axis. Axes are logarithmic where the plotted values
    are positive and span a factor of 10 or more. With ``heatmap=True`` the colour is the median of
    ``y`` over (x, hue), ``hue`` required.

    Parameters
    ----------
    df : DataFrame from :func:`logitrank.verify.sweep.load`
    x, y, hue : column names (parameters for x and hue, a metric for y)
    out_dir : folder of ``<name>.png`` and ``<name>.pdf``
    name : file stem (default ``<sweep>_<y>_vs_<x>``)

    Returns
    -------
    (png path, pdf path)
    """
    import pandas as pd

    for col, what in ((x, "x"), (y, "y")) + (((hue, "hue"),) if hue is not None else ()):
        _check_column(df, col, what)
    if heatmap and hue is None:
        raise ValueError("heatmap=True needs hue, the second parameter (rows of the heatmap)")
    rows = filter_rows(df[df["status"] == "done"], where)
    if rows.empty:
        raise ValueError(f"no finished rows to plot (where={dict(where or {})})")
    values = pd.to_numeric(rows[y], errors="coerce")
    rows = rows.assign(_y=values)
    sweep = str(rows["sweep"].iloc[0]) if "sweep" in rows else "sweep"
    name = name or f"{sweep}_{y}_vs_{x}" + (f"_by_{hue}" if hue else "") + ("_heatmap" if heatmap else "")
    pooled = [c for c in df.attrs.get("config_columns", []) if c not in (x, hue) and rows[c].nunique() > 1]
    if heatmap:
        table = rows.groupby([hue, x])["_y"].median().unstack(x)  # (hues, xs)
        fig, ax = paper_figure("one")
        data = table.to_numpy(dtype=float)
        log = _spans_decades(data.ravel())
        shown = np.log10(data) if log else data
        im = ax.imshow(shown, origin="lower", aspect="auto", cmap="viridis")
        ax.grid(False)
        ax.set_xticks(range(table.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v) for v in table.columns])
        ax.set_yticks(range(table.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v) for v in table.index])
        ax.set_xlabel(x)
        ax.set_ylabel(hue)
        fig.colorbar(im, ax=ax, label=f"log10 median {y}" if log else f"median {y}")
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6, color="w")
    else:
        fig, ax = paper_figure("one")
        groups = [(None, rows)] if hue is None else list(rows.groupby(hue, sort=True))
        for key, group in groups:
            stats = group.groupby(x)["_y"].quantile([0.25, 0.5, 0.75]).unstack()  # (xs, 3)
            xs = stats.index.to_numpy(dtype=float)
            label = None if hue is None else f"{hue}={key:g}" if isinstance(key, float) else f"{hue}={key}"
            (line,) = ax.plot(xs, stats[0.5], marker="o", ms=3, label=label)
            ax.fill_between(xs, stats[0.25], stats[0.75], color=line.get_color(), alpha=0.2, lw=0)
        xv = pd.to_numeric(rows[x], errors="coerce").to_numpy(dtype=float)
        if _spans_decades(xv):
            ax.set_xscale("log")
        if _spans_decades(rows["_y"].to_numpy(dtype=float)):
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(f"{y} (median and IQR over seeds{' and pooled cells' if pooled else ''})")
        finish(ax, integer_x=np.allclose(xv, np.round(xv)))
    subtitle = f"pooled over {', '.join(pooled)}" if pooled else ""
    ax.set_title("\n".join(t for t in (title or sweep, subtitle) if t), fontsize=7)
    return save_figure(fig, out_dir, name)
