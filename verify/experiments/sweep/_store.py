"""The sweep tables of the results database (:mod:`logitrank.verify._store`) and their tidy loading.

Schema (component ``"sweep"``, version 2)::

    sweeps(name PRIMARY KEY, task, spec JSON, created, updated, provenance JSON, digest)
    sweep_rows(sweep, cell, seed_index, seed, config JSON, metrics JSON, status, error, warnings,
               started, seconds, worker, provenance JSON, digest,
               PRIMARY KEY (sweep, cell, seed))

``cell`` is the hash of the cell's configuration and task (:func:`cell_hash`), ``seed`` the
cell's derived seed (so a spec with another base seed never reuses these rows); ``status`` is
"done" or "failed" (``error`` then holds the exception's text); ``warnings`` holds the distinct
warnings the cell raised ("Category: message" lines), NULL when none. Only the driver writes, one
committed transaction per finished row, so ``kill -9`` loses at most the rows in flight.

Damage. ``digest`` is the SHA-256 of the canonical JSON of every other column of the row
(:func:`row_digest`), written with the row and checked whenever a row is read: a row changed
after it was written (a flipped digit in a metric passes SQLite's own integrity check) raises
:class:`DamagedRowError` naming it; ``logitrank sweep run SPEC --recompute`` recomputes it. A
file SQLite itself cannot read raises :class:`SweepStoreError` naming the file.

Rows written before digests existed (schema 1) are sealed once, when this version first opens the
file: their digests are computed from the rows as found then. Damage done to them before that
moment cannot be detected; a reader who distrusts an old file reruns into a fresh ``--store``.

Opening. Every :func:`open_store` runs SQLite's ``PRAGMA integrity_check`` first and refuses a file
that fails it with one :class:`SweepStoreError` line. ``quick_check`` checks every page's structure
but not that an index holds what its table holds: one flipped byte in the key of ``sweep_rows``'s
index passes it (of the 4,096 flips of the low bit of each byte of that index page in a 32-row store,
1,309 passed quick_check and failed integrity_check; 46 of them hid a row from every read), and
then a reader misses a row and a rerun stores a duplicate; ``integrity_check`` compares them too.
Measured on a 10⁵-row, 25 MB store: quick_check 35 ms, integrity_check 70 ms (75 and 200 ms on a
loaded machine), against 2.3 s to load its rows.
A store SQLite may only read (a read-only file or folder) is opened read-only for reading and
refused with "read-only" (never "damaged") for writing; a store that cannot be created (a folder
that is not writable) is refused naming the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..._store import connect, provenance_json, schema_version

__all__ = ["DamagedRowError", "SweepStoreError", "finished", "load", "open_store", "row_digest", "summarize",
           "sweep_names", "write_row"]

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    provenance TEXT NOT NULL,
    digest TEXT
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
    digest TEXT,
    PRIMARY KEY (sweep, cell, seed)
);
"""
_ROW_COLUMNS = ("sweep", "cell", "seed_index", "seed", "config", "metrics", "status", "error", "warnings", "started",
                "seconds", "worker", "provenance")
_SWEEP_COLUMNS = ("name", "task", "spec", "created", "updated", "provenance")


class SweepStoreError(RuntimeError):
    """The results database cannot be read by SQLite (a damaged or foreign file); the message names it."""


class DamagedRowError(ValueError):
    """A stored row's content no longer matches its digest; the message names the row and the fix."""


def row_digest(values) -> str:
    """SHA-256 (hex) of the canonical JSON of a row's column values, in column order.

    Examples
    --------
    >>> row_digest(["s", "ab", 0, 7, '{"d":1}', '{"x":1.5}']) == row_digest(("s", "ab", 0, 7, '{"d":1}', '{"x":1.5}'))
    True
    >>> row_digest(["s", 1.5]) == row_digest(["s", 1.50000001])
    False
    """
    text = json.dumps(list(values), separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _damaged(path, err: sqlite3.DatabaseError) -> SweepStoreError:
    return SweepStoreError(
        f"the results database {str(path)!r} cannot be read ({err}): the file is damaged or not a logitrank store. "
        f"Move it aside and rerun into a fresh --store (the sqlite3 shell's '.recover' may salvage its rows)")


@contextlib.contextmanager
def _reading(path):
    """Turn SQLite's own errors while reading ``path`` into one :class:`SweepStoreError` naming the file."""
    try:
        yield
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            raise
        raise _damaged(path, err) from err
    except sqlite3.DatabaseError as err:
        raise _damaged(path, err) from err


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Schema 1 had no digests: add the columns and seal every existing row as found (once, under a write lock)."""
    row = conn.execute("SELECT version FROM schema_versions WHERE component = 'sweep'").fetchone()
    if row is None or int(row[0]) != 1:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT version FROM schema_versions WHERE component = 'sweep'").fetchone()
        if int(row[0]) == 1:  # another process may have migrated while we waited for the lock
            for table, cols, key in (("sweeps", _SWEEP_COLUMNS, "name"), ("sweep_rows", _ROW_COLUMNS, "rowid")):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN digest TEXT")
                for r in conn.execute(f"SELECT {key}, {', '.join(cols)} FROM {table}").fetchall():
                    conn.execute(f"UPDATE {table} SET digest = ? WHERE {key} = ?", (row_digest(tuple(r)[1:]), r[0]))
            conn.execute("UPDATE schema_versions SET version = 2 WHERE component = 'sweep'")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _existing(path) -> Path:
    """``path`` as a Path when it names an existing file; a clear error otherwise (nothing is created)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming the results database; got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"path must name a results database file, not a folder; got {str(p)!r}")
    if not p.is_file():
        raise FileNotFoundError(f"path {str(p)!r}: no results database there (nothing was created); run "
                                f"`logitrank sweep run SPEC.toml --store {p}` first, or give the file it wrote")
    return p


#: SQLite's words for "this file may only be read here" and "this file cannot be created here"
_READ_ONLY = ("readonly", "read-only", "read only")
_CANNOT_OPEN = "unable to open database file"


def _sqlite_reason(err: BaseException) -> str:
    cause = err.__cause__ if isinstance(err, ValueError) and isinstance(err.__cause__, sqlite3.Error) else err
    return (str(cause).splitlines() or [type(cause).__name__])[0]


def _read_only(path, reason: str) -> SweepStoreError:
    return SweepStoreError(f"the results database {str(path)!r} is read-only here (sqlite: {reason}): it can be shown "
                           "but not written; give a --store in a writable folder (or copy the file there) to run into it")


def _cannot_create(path, reason: str) -> SweepStoreError:
    above = Path(path).parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if above.exists() and not above.is_dir():
        return SweepStoreError(f"the results database {str(path)!r} cannot be created: it lies under {str(above)!r}, "
                               "which is a file, not a folder; give a --store in a writable folder")
    return SweepStoreError(f"the results database {str(path)!r} cannot be created or opened for writing ({reason}): "
                           f"the folder {str(Path(path).parent)!r} is not writable here; give a --store in a writable "
                           "folder")


def _connect_read_only(path) -> sqlite3.Connection:
    """A read-only connection to an existing store (the file or its folder may not be written)."""
    from urllib.parse import quote

    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:  # a WAL file whose -shm cannot be made: read it as it stands
        conn.close()
        conn = sqlite3.connect(uri.replace("mode=ro", "immutable=1"), uri=True)
        conn.row_factory = sqlite3.Row
    return conn


def _check_integrity(conn: sqlite3.Connection, path) -> None:
    """SweepStoreError (one line) unless SQLite's integrity check of the whole file passes (module docstring)."""
    with _reading(path):
        found = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    if found != ["ok"]:
        more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
        first = " ".join(str(found[0]).split())
        raise SweepStoreError(f"the results database {str(path)!r} is damaged: SQLite's integrity check reports "
                              f"{first!r}{more}. Move it aside and rerun into a fresh --store (the sqlite3 shell's "
                              "'.recover' may salvage its rows)")


def _open_writable(path, create: bool) -> sqlite3.Connection | None:
    """connect(path), or None when SQLite may only read the (existing) file; SweepStoreError for a file
    that cannot be created, a read-only file when ``create``, or a damaged one."""
    try:
        conn = connect(path)
    except (ValueError, sqlite3.OperationalError, OSError) as err:
        reason = _sqlite_reason(err)
        if isinstance(err, OSError) or _CANNOT_OPEN in reason:
            if not create and Path(path).is_file():
                return None
            raise _cannot_create(path, getattr(err, "strerror", None) or reason) from None
        if any(word in reason for word in _READ_ONLY):
            if create:
                raise _read_only(path, reason) from None
            return None
        if isinstance(err, ValueError) and isinstance(err.__cause__, sqlite3.DatabaseError):
            raise _damaged(path, err.__cause__) from err
        raise
    return conn


def open_store(path, *, create: bool = True) -> sqlite3.Connection:
    """Connect to the database at ``path`` and create the sweep tables when missing.

    With ``create=False`` the file must exist (:class:`FileNotFoundError` otherwise, and nothing
    is created) and is only read: a file SQLite may not write is opened read-only. A file written by
    schema 1 is migrated once (see the module docstring). Every open runs SQLite's integrity check
    first; a file that fails it raises :class:`SweepStoreError`.
    """
    if not create:
        _existing(path)
    conn = _open_writable(path, create)
    read_only = conn is None
    if read_only:
        conn = _connect_read_only(path)
    try:
        _check_integrity(conn, path)
        with _reading(path):
            if read_only:
                _check_schema_read_only(conn, path)
            else:
                _prepare(conn, path, create)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path, create: bool) -> None:
    """Migrate and create the sweep tables (a file that turns out read-only: refused, or read as it stands)."""
    try:
        _migrate_1_to_2(conn)
        conn.executescript(_SCHEMA)
        schema_version(conn, "sweep", SCHEMA_VERSION)
        if create:  # a file SQLite opened read-only answers every read: try a write (undone) now
            conn.execute("UPDATE schema_versions SET version = version WHERE component = 'sweep'")
            conn.rollback()
    except sqlite3.OperationalError as err:
        reason = _sqlite_reason(err)
        if not any(word in reason for word in _READ_ONLY):
            raise
        if create:
            raise _read_only(path, reason) from None
        _check_schema_read_only(conn, path)


def _check_schema_read_only(conn: sqlite3.Connection, path) -> None:
    """A store opened read-only must already hold the sweep tables at this schema version."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    row = (conn.execute("SELECT version FROM schema_versions WHERE component = 'sweep'").fetchone()
           if "schema_versions" in tables else None)
    if not {"sweeps", "sweep_rows"} <= tables or row is None:
        raise SweepStoreError(f"the results database {str(path)!r} holds no sweep tables (and is read-only here, so "
                              "none can be made); name the file `logitrank sweep run` wrote")
    if int(row[0]) != SCHEMA_VERSION:
        raise SweepStoreError(f"the results database {str(path)!r} holds sweep tables of schema version {row[0]}; "
                              f"this logitrank reads version {SCHEMA_VERSION}, and the file is read-only here, so it "
                              "cannot be migrated; copy it to a writable folder and open the copy")


def register_sweep(conn: sqlite3.Connection, name: str, task: str, spec: Mapping, now: float) -> None:
    """Insert or refresh the sweep's header row (its latest spec and provenance), with its digest."""
    spec_text, prov = json.dumps(spec, sort_keys=True), provenance_json()
    with conn:
        row = conn.execute("SELECT created FROM sweeps WHERE name = ?", (name,)).fetchone()
        created = float(now) if row is None else float(row[0])
        values = (name, task, spec_text, created, float(now), prov)
        conn.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET task = excluded.task, "
                     "spec = excluded.spec, updated = excluded.updated, provenance = excluded.provenance, "
                     "digest = excluded.digest", (*values, row_digest(values)))


def _json_number(v):
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # JSON has no inf/nan: stored as text, read back as float
    return v


def write_row(conn: sqlite3.Connection, sweep: str, row: Mapping) -> None:
    """Store one finished (cell, seed) row with its digest, replacing an earlier attempt, in its own transaction."""
    metrics = None if row["metrics"] is None else json.dumps({k: _json_number(v) for k, v in row["metrics"].items()})
    values = (sweep, row["cell"], int(row["seed_index"]), int(row["seed"]), json.dumps(dict(row["config"]), sort_keys=True),
              metrics, row["status"], row.get("error"), row.get("warnings"), float(row["started"]), float(row["seconds"]),
              row.get("worker"), provenance_json())
    with conn:
        conn.execute("INSERT OR REPLACE INTO sweep_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (*values, row_digest(values)))


def _intact(r: sqlite3.Row, columns) -> bool:
    return r["digest"] == row_digest(tuple(r[c] for c in columns))


def damaged_message(path, rows: list, fix: str = "") -> str:
    """One paragraph naming the first damaged row (sweep, cell, seed, config) and how many more, with the fix."""
    r = rows[0]
    more = f" ({len(rows) - 1} more row(s) of this store are damaged too)" if len(rows) > 1 else ""
    return (f"sweep {r['sweep']!r} in {str(path)!r}: the row of cell {r['cell']} seed_index {r['seed_index']} "
            f"(seed {r['seed']}, config {r['config']}) does not match its digest: it was changed or damaged after "
            f"it was written{more}. Rerun the sweep with --recompute (`logitrank sweep run SPEC.toml --store {path} "
            f"--recompute`; from Python run_sweep(..., engine=Engine(recompute=True))) to recompute damaged rows{fix}")


def stored_rows(conn: sqlite3.Connection, sweep: str, *, path="the store") -> tuple[dict, list]:
    """(cell, seed) → (status, seconds) of every intact stored row of ``sweep``, and the damaged rows."""
    with _reading(path):
        rows = conn.execute("SELECT * FROM sweep_rows WHERE sweep = ?", (sweep,)).fetchall()
    ok, bad = {}, []
    for r in rows:
        if _intact(r, _ROW_COLUMNS):
            ok[(r["cell"], int(r["seed"]))] = (r["status"], float(r["seconds"]))
        else:
            bad.append(r)
    return ok, bad


def finished(conn: sqlite3.Connection, sweep: str, *, path="the store") -> dict[tuple[str, int], str]:
    """(cell, seed) → status of every stored row of ``sweep``; :class:`DamagedRowError` if any row is damaged."""
    ok, bad = stored_rows(conn, sweep, path=path)
    if bad:
        raise DamagedRowError(damaged_message(path, bad))
    return {k: status for k, (status, _) in ok.items()}


def _spec_row(conn: sqlite3.Connection, sweep: str, path) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM sweeps WHERE name = ?", (sweep,)).fetchone()
    if row is not None and not _intact(row, _SWEEP_COLUMNS):
        raise DamagedRowError(f"sweep {sweep!r} in {str(path)!r}: its header row (the stored spec) does not match its "
                              f"digest: it was changed or damaged after it was written. Rerun the sweep "
                              f"(`logitrank sweep run SPEC.toml --store {path}`) to write it again")
    return row


def _current_rows(conn: sqlite3.Connection, sweep: str, path) -> set[tuple[str, int]] | None:
    """(cell, seed) pairs of the sweep's latest stored spec (None: a spec this version no longer accepts, keep all)."""
    from ._spec import SweepSpec

    row = _spec_row(conn, sweep, path)
    try:
        spec = SweepSpec.from_dict(json.loads(row["spec"]))
    except (TypeError, ValueError):
        return None
    return {(c.hash, s) for c in spec.cells() for s in c.seeds}


def sweep_names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sweeps ORDER BY created")]


def _legacy_tv(task: str, config: Mapping, metrics: dict) -> dict:
    """Rows of the learn task written before ``tv_truth``: their ``tv`` is renamed by what it measured.

    Before, ``tv`` was TV to the oracle unless the cell set ``tv_to = "truth"``; with ξ = 0 the
    oracle is the truth.
    """
    if task != "learn" or "tv" not in metrics or "tv_truth" in metrics:
        return metrics
    metrics = dict(metrics)
    tv = metrics.pop("tv")
    truth = config.get("tv_to", "oracle") == "truth" or not config.get("xi", 0.0)
    metrics["tv_truth" if truth else "tv_oracle"] = tv
    return metrics


def _metric(v):
    return float(v) if isinstance(v, str) and v in ("inf", "-inf", "nan") else v


def load(path, sweep=None, *, current: bool = True):
    """The rows of ``sweep`` (every sweep when None) as a tidy pandas DataFrame, one row per cell × seed.

    ``sweep`` is a sweep name or a :class:`~logitrank.verify.experiments.sweep.SweepSpec`; a spec selects
    exactly its own (cell, seed) rows, whatever other specs of the same name stored. With a name
    and ``current=True`` (default) only the rows of the sweep's latest stored spec are kept (a
    spec edited since, with fewer cells or another base seed, leaves its old rows in the store).

    Columns: ``sweep, cell, seed_index, seed, status, error, warnings, seconds, started`` then one column per
    configuration key and one per metric (a metric named like a configuration key gets the
    prefix ``metric_``). Failed rows have NaN metrics.

    TV columns of the ``learn`` task: ``tv_truth`` and, under oracle noise, ``tv_oracle``. Rows
    stored before both existed had one ``tv`` (to the oracle unless ``tv_to = "truth"``); it is
    read into the column it measured. For code written before, a ``tv`` column repeats
    ``tv_truth`` (not listed in ``df.attrs["metric_columns"]``).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (nothing is created).
    DamagedRowError
        A row read does not match its digest (changed after it was written).
    SweepStoreError
        SQLite cannot read the file.
    """
    import pandas as pd

    from ._spec import SweepSpec

    path = _existing(path)
    wanted = None
    if isinstance(sweep, SweepSpec):
        wanted = {(c.hash, s) for c in sweep.cells() for s in c.seeds}
        sweep, current = sweep.name, False
    conn = open_store(path, create=False)
    try:
        with _reading(path):
            names = sweep_names(conn)
            if sweep is not None and sweep not in names:
                raise ValueError(f"sweep must be one of the sweeps stored in {str(path)!r} {names}; got {sweep!r}")
            query = "SELECT * FROM sweep_rows" + (" WHERE sweep = ?" if sweep is not None else "") + \
                " ORDER BY sweep, started, cell, seed_index"
            rows = conn.execute(query, (sweep,) if sweep is not None else ()).fetchall()
            tasks = {name: _spec_row(conn, name, path)["task"] for name in {r["sweep"] for r in rows}}
            if current:
                keep = {name: _current_rows(conn, name, path) for name in tasks}
                rows = [r for r in rows if keep[r["sweep"]] is None or (r["cell"], r["seed"]) in keep[r["sweep"]]]
            if wanted is not None:
                rows = [r for r in rows if (r["cell"], r["seed"]) in wanted]
    finally:
        conn.close()
    bad = [r for r in rows if not _intact(r, _ROW_COLUMNS)]
    if bad:
        raise DamagedRowError(damaged_message(path, bad))
    records, config_keys, metric_keys = [], {}, {}
    for r in rows:
        config = json.loads(r["config"])
        metrics = {k: _metric(v) for k, v in json.loads(r["metrics"]).items()} if r["metrics"] else {}
        metrics = _legacy_tv(tasks[r["sweep"]], config, metrics)
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
    if "tv_truth" in df.columns and "tv" not in df.columns:
        df["tv"] = df["tv_truth"]  # the name used before tv_truth existed; kept for code written then
    df.attrs["config_columns"] = list(config_keys)
    df.attrs["metric_columns"] = [k for k in metric_keys if k not in config_keys]
    return df


def summarize(df, *, metrics=None):
    """Median, IQR and range over seeds of every metric, one row per cell (done rows only).

    Returns a DataFrame with the configuration columns, ``seeds`` (done rows), ``failed`` and, per
    metric m, ``m`` (median), ``m_q25``, ``m_q75``, ``m_min`` and ``m_max``. With fewer than
    :data:`IQR_MIN_SEEDS` seeds a quartile says little; the CLI and the figures show [min, max] then.
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
                rec[f"{m}_min"] = values.min()
                rec[f"{m}_max"] = values.max()
        out.append(rec)
    return pd.DataFrame.from_records(out)

