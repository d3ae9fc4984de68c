"""A sweep's section of the report (``logitrank report --sweep NAME``): its table and default figure.

The table is :func:`logitrank.verify.experiments.sweep.summarize` (median with [min, max] below 5 seeds, IQR from
5, per cell); the figure is :func:`logitrank.verify.experiments.sweep.plot_sweep` of the first metric against the
grid parameter with the most values, one line per the next (faceted by the rest), unless ``x``,
``y`` and ``hue`` are given. Both land in ``<out>/sweeps/<name>.md`` and ``<name>.html`` (the
figure embedded, self-contained like the claims report).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from logitrank._io import atomic_write_text

__all__ = ["write_sweep_report"]


def _default_axes(df, x, y, hue):
    params = [c for c in df.attrs.get("config_columns", []) if df[c].nunique(dropna=True) > 1]
    params.sort(key=lambda c: -df[c].nunique(dropna=True))
    metrics = [m for m in df.attrs.get("metric_columns", []) if df[m].notna().any()]
    if not metrics:
        raise ValueError("the sweep has no metric column with a value (no done rows?)")
    x = x or (params[0] if params else None)
    if x is None:
        raise ValueError("the sweep varies no parameter: name --x")
    y = y or next((m for m in ("tv_truth", "tv", "alpha", "α") if m in metrics), metrics[0])
    hue = hue if hue is not None else next((p for p in params if p != x), None)
    return x, y, hue


def _md_table(df) -> str:
    """A pandas table as Markdown (numbers to 4 significant digits)."""
    def cell(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    rows = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + " --- |" * len(df.columns)]
    rows += ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(rows)


def write_sweep_report(store, name: str, out_dir, *, x: str | None = None, y: str | None = None,
                       hue: str | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/sweeps/<name>.md`` and ``.html`` for sweep ``name`` in ``store``; → their paths."""
    from .sweep import load, plot_sweep, summarize

    df = load(store, name)
    if df.empty:
        raise ValueError(f"sweep {name!r} has no rows in {store}")
    x, y, hue = _default_axes(df, x, y, hue)
    out = Path(out_dir) / "sweeps"
    png, _ = plot_sweep(df, x=x, y=y, hue=hue, out_dir=out, name=f"{name}_{y}_vs_{x}")
    table = summarize(df)
    keep = [c for c in table.columns if not c.endswith(("_q25", "_q75"))]
    done, failed = int((df["status"] == "done").sum()), int((df["status"] != "done").sum())
    head = f"sweep {name}: {len(table)} cells, {done} rows done, {failed} failed; store {store}"
    md = out / f"{name}.md"
    atomic_write_text(md, f"# {head}\n\n![{y} against {x}]({png.name})\n\n{_md_table(table[keep])}\n")
    data = base64.b64encode(png.read_bytes()).decode()
    page = out / f"{name}.html"
    atomic_write_text(page, "<!doctype html><html><head><meta charset='utf-8'>"
                      f"<title>{html.escape(name)}</title><style>body{{font-family:system-ui,sans-serif;max-width:60rem;"
                      "margin:2rem auto}table{border-collapse:collapse;font-size:.8rem}td,th{border:1px solid #ccc;"
                      "padding:.2rem .4rem}img{max-width:100%}</style></head><body>"
                      f"<h1>{html.escape(head)}</h1><img alt='{html.escape(y)} against {html.escape(x)}' "
                      f"src='data:image/png;base64,{data}'>{table[keep].to_html(index=False)}</body></html>")
    return md, page
