"""A sweep's summary as a table a reviewer can read: what ``logitrank sweep show`` prints and
``logitrank report --sweep NAME`` writes (:func:`sweep_table`).

* rows sorted by the grid keys (numbers as numbers: 1e-06 < 0.001 < 0.1);
* columns that hold one value in every row (fixed settings, a constant seed count, no failures, a metric
  equal everywhere) folded into header lines instead of repeated in every row; cell hashes left out;
* metrics with no value in any row dropped (and named), or chosen with ``metrics``;
* one column per metric: the median with [min, max] below :data:`IQR_MIN_SEEDS` seeds, the IQR from there;
* :func:`table_pages` splits the metric columns into pages of at most :data:`METRICS_PER_PAGE`, each
  repeating the grid keys, so no table runs off a page or a terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..._metrics import IQR_MIN_SEEDS

__all__ = ["METRICS_PER_PAGE", "SweepTable", "sweep_table", "table_pages"]

#: metric columns per table of the HTML and Markdown report (each table repeats the grid keys)
METRICS_PER_PAGE = 4


@dataclass
class SweepTable:
    """A sweep's summary ready to show (:func:`sweep_table`).

    Attributes
    ----------
    frame : DataFrame, one row per cell sorted by ``keys``: the varying grid keys, then ``seeds`` and
        ``failed`` when they vary, then one text column per metric (median and spread)
    keys : the grid keys that vary (the sort order)
    metrics : the metric columns of ``frame``
    fixed : column → value of every column folded into the header (one value in every row)
    dropped : metrics left out because no row has a value
    spread : what the bracket of a metric column is ("[min, max]", "IQR" or both, by seeds)
    """

    frame: object
    keys: list
    metrics: list
    fixed: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    spread: str = "[min, max]"

    def header_lines(self) -> list[str]:
        """The folded columns and the dropped metrics, one line each (empty lines left out)."""
        fixed = ", ".join(f"{k}={_text(v)}" for k, v in self.fixed.items())
        lines = [f"median {self.spread} over seeds per cell; sorted by {', '.join(self.keys) or 'nothing (one cell)'}",
                 f"same in every row: {fixed}" if fixed else ""]
        if self.dropped:
            lines.append(f"no value in any row (left out): {', '.join(self.dropped)}")
        return [line for line in lines if line]


def _text(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _sort_key(v):
    """Numbers before strings, numbers by value (so 1e-6 < 1e-3 < 0.1, not by their text)."""
    if isinstance(v, bool) or v is None:
        return (2, str(v))
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return (0, float(v))
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


def _spread_text(a, lo, hi) -> str:
    if math.isnan(a):  # no seed of the cell has a value
        return "—"
    return f"{a:.3g} [{lo:.3g}, {hi:.3g}]"


def _chosen_metrics(df, metrics: Sequence[str] | None) -> tuple[list, list]:
    """(metrics to show, metrics dropped for having no value); a metric not in the sweep is a ValueError naming
    the valid ones."""
    import pandas as pd

    known = list(df.attrs["metric_columns"]) + ["seconds"]
    if metrics is not None:
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise ValueError(f"--metrics {unknown} not in sweep {df['sweep'].iloc[0]!r}; it has {known}")
        return list(dict.fromkeys(metrics)), []
    done = df[df["status"] == "done"]
    empty = [m for m in known if m not in done or pd.to_numeric(done[m], errors="coerce").isna().all()]
    return [m for m in known if m not in empty], empty


def sweep_table(df, *, metrics: Sequence[str] | None = None) -> SweepTable:
    """The summary of the rows ``df`` (from :func:`~logitrank.verify.experiments.sweep.load`) as a readable table.

    ``metrics`` chooses the metric columns (default: every metric with a value in some row, and ``seconds``).
    Raises ValueError naming the valid metrics for one the sweep does not have.
    """
    from ._store import summarize

    if df.empty:
        raise ValueError("the sweep has no rows")
    shown, dropped = _chosen_metrics(df, metrics)
    table = summarize(df, metrics=shown)
    config = [c for c in df.attrs["config_columns"] if c in table.columns]
    keys = [c for c in config if table[c].astype(str).nunique() > 1]
    order = sorted(range(len(table)), key=lambda i: tuple(_sort_key(table[c].iloc[i]) for c in keys))
    table = table.iloc[order].reset_index(drop=True)
    fixed = {c: table[c].iloc[0] for c in config if c not in keys}
    counts = []
    for c in ("seeds", "failed"):
        if table[c].nunique() == 1:
            fixed[c] = int(table[c].iloc[0])
        else:
            counts.append(c)
    view = table[keys + counts].copy()
    for c in keys:  # numbers as written in a spec (1e-06, not 0.000001)
        view[c] = [_text(v) for v in view[c]]
    iqr = table["seeds"] >= IQR_MIN_SEEDS
    kept = []
    for m in shown:
        lo, hi = (f"{m}_q25", f"{m}_q75"), (f"{m}_min", f"{m}_max")
        texts = [_spread_text(table[m].iat[i], *(table[c].iat[i] for c in (lo if iqr.iat[i] else hi)))
                 for i in range(len(table))]
        if len(set(texts)) == 1 and len(texts) > 1:
            fixed[m] = texts[0]  # the same in every cell: a header line, not a column
        else:
            view[m] = texts
            kept.append(m)
    spread = "IQR" if iqr.all() else "[min, max]" if not iqr.any() else \
        f"[min, max] (cells with < {IQR_MIN_SEEDS} seeds) or IQR"
    return SweepTable(view, keys, kept, fixed, dropped, spread)


def table_pages(table: SweepTable) -> list:
    """The table in pages of at most :data:`METRICS_PER_PAGE` metrics, each with the grid keys and counts."""
    first = [c for c in table.frame.columns if c not in table.metrics]
    chunks = [table.metrics[i:i + METRICS_PER_PAGE] for i in range(0, len(table.metrics), METRICS_PER_PAGE)]
    return [table.frame[first + chunk] for chunk in chunks] or [table.frame[first]]


