"""The sweep tables of the results database (:mod:`logitrank.verify._store`) and their tidy loading.

Schema (component ``"sweep"``, version 1)::

    sweeps(name PRIMARY KEY, task, spec JSON, created, updated, provenance JSON)
    sweep_rows(sweep, cell, seed_index, seed, config JSON, metrics JSON, status, error, warnings,
               started, seconds, worker, provenance JSON,
               PRIMARY KEY (sweep, cell, seed))

``cell`` is the hash of the cell's configuration and task (:func:`cell_hash`), ``seed`` the
cell's derived seed (so a spec with another base seed never reuses these rows); ``status`` is
"done" or "failed" (``error`` then holds the exception's text); ``warnings`` holds the distinct
warnings the cell raised ("Category: message" lines), NULL when none. Only the driver writes, one
committed transaction per finished row, so ``kill -9`` loses at most the rows in flight.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping

import numpy as np

from .._store import connect, provenance_json, schema_version

__all__ = ["finished", "load", "open_store", "summarize", "sweep_names", "write_row"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    provenance TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_rows (
    sweep TEXT NOT NULL REFERENCES sweeps(name),
    cell TEXT NOT NULL,
    seed_index INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    error TEXT,
    warnings TEXT,
    started REAL NOT NULL,
    seconds REAL NOT NULL,
    worker TEXT,
    provenance TEXT NOT NULL,
    PRIMARY KEY (sweep, cell, seed)
);
"""


def open_store(path) -> sqlite3.Connection:
    """Connect to the database at ``path`` and create the sweep tables when missing."""
    conn = connect(path)
    conn.executescript(_SCHEMA)
    schema_version(conn, "sweep", SCHEMA_VERSION)
    return conn


def register_sweep(conn: sqlite3.Connection, name: str, task: str, spec: Mapping, now: float) -> None:
    """Insert or refresh the sweep's header row (its latest spec and provenance)."""
    with conn:
        conn.execute(
            "INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "task = excluded.task, spec = excluded.spec, updated = excluded.updated, provenance = excluded.provenance",
            (name, task, json.dumps(spec, sort_keys=True), now, now, provenance_json()),
        )


def _json_number(v):
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # JSON has no inf/nan: stored as text, read back as float
    return v


def write_row(conn: sqlite3.Connection, sweep: str, row: Mapping) -> None:
    """Store one finished (cell, seed) row, replacing an earlier attempt, in its own transaction."""
    metrics = None if row["metrics"] is None else json.dumps({k: _json_number(v) for k, v in row["metrics"].items()})
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO sweep_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sweep, row["cell"], row["seed_index"], row["seed"], json.dumps(dict(row["config"]), sort_keys=True),
             metrics, row["status"], row.get("error"), row.get("warnings"), row["started"], row["seconds"], row.get("worker"),
             provenance_json()),
        )


def finished(conn: sqlite3.Connection, sweep: str) -> dict[tuple[str, int], str]:
    """(cell, seed) → status of every stored row of ``sweep``."""
    cur = conn.execute("SELECT cell, seed, status FROM sweep_rows WHERE sweep = ?", (sweep,))
    return {(c, int(i)): s for c, i, s in cur}


def _current_rows(conn: sqlite3.Connection, sweep: str) -> set[tuple[str, int]]:
    """(cell, seed) pairs of the sweep's latest stored spec."""
    from ._spec import SweepSpec

    row = conn.execute("SELECT spec FROM sweeps WHERE name = ?", (sweep,)).fetchone()
    spec = SweepSpec.from_dict(json.loads(row[0]))
    return {(c.hash, s) for c in spec.cells() for s in c.seeds}


def sweep_names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sweeps ORDER BY created")]


def _metric(v):
    return float(v) if isinstance(v, str) and v in ("inf", "-inf", "nan") else v


def load(path, sweep=None, *, current: bool = True):
    """The rows of ``sweep`` (every sweep when None) as a tidy pandas DataFrame, one row per cell × seed.

    ``sweep`` is a sweep name or a :class:`~logitrank.verify.sweep.SweepSpec`; a spec selects
    exactly its own (cell, seed) rows, whatever other specs of the same name stored. With a name
    and ``current=True`` (default) only the rows of the sweep's latest stored spec are kept (a
    spec edited since, with fewer cells or another base seed, leaves its old rows in the store).

    Columns: ``sweep, cell, seed_index, seed, status, error, warnings, seconds, started`` then one column per
    configuration key and one per metric (a metric named like a configuration key gets the
    prefix ``metric_``). Failed rows have NaN metrics.
    """
    import pandas as pd

    from ._spec import SweepSpec

    wanted = None
    if isinstance(sweep, SweepSpec):
        wanted = {(c.hash, s) for c in sweep.cells() for s in c.seeds}
        sweep, current = sweep.name, False
    conn = open_store(path)
    try:
        if sweep is not None and sweep not in sweep_names(conn):
            raise ValueError(f"sweep must be one of the sweeps stored in {str(path)!r} {sweep_names(conn)}; got {sweep!r}")
        query = "SELECT * FROM sweep_rows" + (" WHERE sweep = ?" if sweep is not None else "") + \
            " ORDER BY sweep, started, cell, seed_index"
        rows = conn.execute(query, (sweep,) if sweep is not None else ()).fetchall()
        if current:
            keep = {name: _current_rows(conn, name) for name in {r["sweep"] for r in rows}}
            rows = [r for r in rows if (r["cell"], r["seed"]) in keep[r["sweep"]]]
        if wanted is not None:
            rows = [r for r in rows if (r["cell"], r["seed"]) in wanted]
    finally:
        conn.close()
    records, config_keys, metric_keys = [], {}, {}
    for r in rows:
        config = json.loads(r["config"])
        metrics = {k: _metric(v) for k, v in json.loads(r["metrics"]).items()} if r["metrics"] else {}
        rec = {"sweep": r["sweep"], "cell": r["cell"], "seed_index": r["seed_index"], "seed": r["seed"],
               "status": r["status"], "error": r["error"], "warnings": r["warnings"], "seconds": r["seconds"], "started": r["started"],
               **config}
        config_keys.update(dict.fromkeys(config))
        for k, v in metrics.items():
            key = f"metric_{k}" if k in rec else k
            rec[key] = v
            metric_keys[key] = None
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    df.attrs["config_columns"] = list(config_keys)
    df.attrs["metric_columns"] = [k for k in metric_keys if k not in config_keys]
    return df


def summarize(df, *, metrics=None):
    """Median and IQR over seeds of every metric, one row per cell (done rows only).

    Returns a DataFrame with the configuration columns, ``seeds`` (done rows), ``failed`` and, per
    metric m, ``m`` (median), ``m_q25`` and ``m_q75``.
    """
    import pandas as pd

    if df.empty:
        return pd.DataFrame()
    if "config_columns" not in df.attrs:
        raise ValueError("df must come from load() (its attrs name the configuration and metric columns)")
    config_cols = df.attrs["config_columns"]
    if metrics is None:
        metrics = df.attrs["metric_columns"] + ["seconds"]
    out = []
    for cell, group in df.groupby("cell", sort=False):
        done = group[group["status"] == "done"]
        rec = {c: group[c].iloc[0] for c in config_cols}
        rec.update({"cell": cell, "seeds": len(done), "failed": int((group["status"] == "failed").sum())})
        for m in metrics:
            values = pd.to_numeric(done[m], errors="coerce") if m in done else pd.Series(dtype=float)
            with np.errstate(invalid="ignore"):  # inf metrics (e.g. a rank margin) give inf/NaN quantiles
                rec[m] = values.median()
                rec[f"{m}_q25"] = values.quantile(0.25)
                rec[f"{m}_q75"] = values.quantile(0.75)
        out.append(rec)
    return pd.DataFrame.from_records(out)

