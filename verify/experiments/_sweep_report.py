"""A sweep's section of the report (``logitrank report --sweep NAME``): its table and default figure.

The table is :func:`logitrank.verify.experiments.sweep.sweep_table` (what ``logitrank sweep show`` prints:
sorted by the grid keys, constant columns folded into header lines, empty metrics dropped).
:func:`write_sweep_report` writes ``<out>/sweeps/<name>.md`` and ``<name>.html``: the header lines, the
default figure (:func:`logitrank.verify.experiments.sweep.plot_sweep` of the first metric against the grid
parameter with the most values, one line per the next, faceted by the rest) and the table, split into
pages of at most :data:`METRICS_PER_PAGE` metrics that each repeat the grid keys, so no table runs off
the page.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from logitrank._io import atomic_write_text

from .sweep._table import _text, sweep_table, table_pages

__all__ = ["write_sweep_report"]

def _default_axes(df, x, y, hue):
    params = [c for c in df.attrs.get("config_columns", []) if df[c].astype(str).nunique(dropna=True) > 1]
    params.sort(key=lambda c: -df[c].astype(str).nunique(dropna=True))
    metrics = [m for m in df.attrs.get("metric_columns", []) if df[m].notna().any()]
    if not metrics:
        raise ValueError("the sweep has no metric column with a value (no done rows?)")
    x = x or (params[0] if params else None)  # None: nothing varies (one cell), so no figure
    y = y or next((m for m in ("tv_truth", "tv", "alpha", "α") if m in metrics), metrics[0])
    hue = hue if hue is not None else next((p for p in params if p != x), None)
    return x, y, hue


def _md_table(frame) -> str:
    """A pandas table as Markdown."""
    rows = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * len(frame.columns)]
    rows += ["| " + " | ".join(_text(v).replace("|", "\\|") for v in r) + " |" for r in frame.itertuples(index=False)]
    return "\n".join(rows)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem}"
        ".page{overflow-x:auto;margin:1rem 0}table{border-collapse:collapse;font-size:.8rem}"
        "td,th{border:1px solid #ccc;padding:.2rem .4rem;white-space:nowrap}th{background:#f4f4f4}"
        "tr:nth-child(even) td{background:#fafafa}img{max-width:100%}p.head{margin:.2rem 0;font-size:.9rem}")


def write_sweep_report(store, name: str, out_dir, *, x: str | None = None, y: str | None = None,
                       hue: str | None = None, metrics: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/sweeps/<name>.md`` and ``.html`` for sweep ``name`` in ``store``; → their paths.

    ``metrics`` chooses the table's metrics (:func:`sweep_table`); ``x``, ``y``, ``hue`` the figure's axes."""
    from .sweep import load, plot_sweep

    df = load(store, name)
    if df.empty:
        raise ValueError(f"sweep {name!r} has no rows in {store}")
    table = sweep_table(df, metrics=metrics)
    x, y, hue = _default_axes(df, x, y, hue)
    out = Path(out_dir) / "sweeps"
    out.mkdir(parents=True, exist_ok=True)
    png = None if x is None else plot_sweep(df, x=x, y=y, hue=hue, out_dir=out, name=f"{name}_{y}_vs_{x}")[0]
    done, failed = int((df["status"] == "done").sum()), int((df["status"] != "done").sum())
    head = f"sweep {name}: {len(table.frame)} cells, {done} rows done, {failed} failed; store {Path(store).name}"
    pages = table_pages(table)
    md = out / f"{name}.md"
    figure = ("no figure: the sweep varies no parameter (one cell)" if png is None
              else f"![{y} against {x}]({png.name})")
    atomic_write_text(md, f"# {head}\n\n" + "".join(f"- {line}\n" for line in table.header_lines())
                      + f"\n{figure}\n\n" + "\n\n".join(_md_table(p) for p in pages) + "\n")
    esc = html.escape
    body = "".join(f"<p class='head'>{esc(line)}</p>" for line in table.header_lines())
    if png is None:
        body += f"<p>{esc(figure)}</p>"
    else:
        data = base64.b64encode(png.read_bytes()).decode()
        body += f"<img alt='{esc(y)} against {esc(x)}' src='data:image/png;base64,{data}'>"
    body += "".join(f"<div class='page'>{p.to_html(index=False, border=0)}</div>" for p in pages)
    page = out / f"{name}.html"
    atomic_write_text(page, f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(name)}</title>"
                      f"<style>{_CSS}</style></head><body><h1>{esc(head)}</h1>{body}</body></html>")
    return md, page
