"""Claim-run records and results, kept across runs in the shared SQLite store (:mod:`._store`).

``logitrank check`` writes one *run record* per invocation and one *result row* per claim as soon as
the claim finishes (one commit each, so ``kill -9`` loses at most the claim in progress). A later run
updates the claims it runs and leaves the others; :meth:`ClaimStore.latest` gives the newest result of
every claim (the ``checks.json`` export), and :meth:`ClaimStore.finished` the results a ``--resume``
run may reuse: those of the same *settings* (scale, base seed, seeds per seeded check, model) whose
verdict is holds, fails or mixed (an *error* or *not-run* is retried). Each seed of a seeded claim is
stored as it finishes, so a run killed inside a long seeded claim resumes from its next seed.

Every row carries a ``digest`` column: the sha256 of its other columns (:func:`._store.row_digest`),
verified whenever the row is read. A row whose digest does not match (a flipped bit: SQLite's own
integrity check does not see one) raises :class:`StoreDamagedError` naming the row and the way out,
``logitrank check ID --recompute``, which drops the damaged rows (:meth:`ClaimStore.drop_damaged`) and
computes them again. A file SQLite itself cannot read (a damaged page, "file is not a database")
raises :class:`StoreDamagedError` with one line naming the file and what to do.

A run killed with ``kill -9`` cannot write its end: its record says 'running'. Each record names the
process that wrote it (pid, host, and the process's start time where ``/proc`` gives it, so a reused
pid is not mistaken for it); the next ``check`` on the same host marks a 'running' record whose
process is gone 'interrupted' (:meth:`ClaimStore.mark_interrupted`), and ``runs`` shows it so.

Rows written before digests existed (schema 1; the column is added as NULL when such a file is
opened) cannot be verified: they are still listed (``latest``, ``runs``, the ``checks.json`` export),
but ``--resume`` never reuses them, so a resumed run recomputes those claims and stores verified rows.

Schema (component ``"claims"``, version 2), beside the sweep tables in the same database file::

    claim_runs(run_id INTEGER PRIMARY KEY, started TEXT, finished TEXT, status TEXT,
               -- 'running' | 'completed' | 'interrupted' (a run killed -9 is marked 'interrupted'
               -- by the next run that finds its process gone; see below)
               config TEXT,      -- JSON {scale, seed, seeds, model, out_dir, process: {pid, host, started}}
               claims TEXT,      -- JSON list of the requested claim IDs
               argv TEXT,        -- JSON list, the command line
               provenance TEXT,  -- JSON {logitrank, git_sha, python, numpy, torch, transformers}
               wall_s REAL)
    claim_results(run_id INTEGER REFERENCES claim_runs, claim_id TEXT, settings TEXT,
                  verdict TEXT, seconds REAL, finished TEXT,
                  reused_from INTEGER,  -- run whose result a --resume run reused, else NULL
                  result TEXT,          -- JSON of ClaimResult.to_dict()
                  PRIMARY KEY (run_id, claim_id))
    claim_seeds(settings TEXT, claim_id TEXT, seed INTEGER, run_id INTEGER, verdict TEXT,
                result TEXT,            -- one seed of a seeded claim, stored as it finishes
                PRIMARY KEY (settings, claim_id, seed))
    -- each table ends with  digest TEXT  (sha256 of the row's other columns; NULL in a schema-1 row)
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from .._store import connect, provenance, provenance_json, row_digest, schema_version
from ._check_api import CheckConfig, ClaimResult
from ._ledger import LEDGER

__all__ = ["COLUMNS", "RESUMABLE", "ClaimStore", "StoreDamagedError", "settings_key"]

#: verdicts a ``--resume`` run reuses; "error" and "not-run" are run again
RESUMABLE = ("holds", "fails", "mixed")
_SCHEMA = 2
#: the columns of each table covered by its ``digest``, in stored order
COLUMNS = {
    "claim_runs": ("run_id", "started", "finished", "status", "config", "claims", "argv", "provenance", "wall_s"),
    "claim_results": ("run_id", "claim_id", "settings", "verdict", "seconds", "finished", "reused_from", "result"),
    "claim_seeds": ("settings", "claim_id", "seed", "run_id", "verdict", "result"),
}


class StoreDamagedError(RuntimeError):
    """The claims store cannot be trusted: a row fails its digest, or SQLite cannot read the file.

    The message is one line naming the file, the row when known, and what to do. ``rows`` lists
    ``(table, description, claim_id)`` of the rows that failed their digest (empty for a file SQLite
    cannot read).
    """

    def __init__(self, message: str, rows: list[tuple[str, str, str | None]] | None = None):
        super().__init__(message)
        self.rows = rows or []


def _unreadable(path: str, err: sqlite3.DatabaseError) -> StoreDamagedError:
    reason = (str(err).splitlines() or ["unreadable"])[0]
    return StoreDamagedError(
        f"claims store {path!r} is damaged (sqlite: {reason}): move it aside (mv {path} {path}.damaged) and rerun, "
        f"which starts a new store, or recover what is readable with `sqlite3 {path} .recover`")


def _sqlite_errors(method):
    """Turn SQLite's "malformed"/"not a database" errors inside a store method into StoreDamagedError (one
    line naming the file); lock timeouts and other operational errors pass unchanged."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise
        except sqlite3.DatabaseError as err:
            raise _unreadable(self.path, err) from None

    return wrapper


def _describe(table: str, row) -> tuple[str, str | None]:
    """(how to name ``row`` in a message, its claim ID or None)."""
    if table == "claim_runs":
        return f"claim_runs row of run {row['run_id']}", None
    if table == "claim_results":
        return f"claim_results row of run {row['run_id']}, claim {row['claim_id']}", row["claim_id"]
    return f"claim_seeds row of claim {row['claim_id']}, seed {row['seed']} (run {row['run_id']})", row["claim_id"]


def _process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (/proc/PID/stat field 22), None where
    unknown: with the pid it names one process, never a later one that reused its pid."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": the comm may hold spaces
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _this_process() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _process_start(os.getpid())}


def _gone(process) -> bool:
    """Whether the process a run record names has ended (False when it cannot be told: another host, an old
    record without one)."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    started = process.get("started")
    return started is not None and _process_start(pid) not in (None, started)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def settings_key(config: CheckConfig) -> str:
    """JSON text of what determines a claim's result (the ``--resume`` match): scale, seeds, model, the
    ``--set`` overrides (with the preset they resolve the whole config), the weights' dtype (named only when
    it is not float32, so float32 keys stay as they were) and the code version (git SHA)."""
    key = {"scale": config.scale, "seed": config.seed, "seeds": config.n_seeds, "model": config.model,
           "overrides": [[k, v] for k, v in config.overrides], "code": provenance()["git_sha"]}
    if config.dtype != "float32":
        key["dtype"] = config.dtype
    return json.dumps(key, sort_keys=True)


def _same_settings(stored: str, config: CheckConfig, any_code: bool) -> bool:
    """Does a stored settings key match ``config``? ``any_code``: whatever code version stored it."""
    try:
        a = json.loads(stored)
    except (TypeError, ValueError):
        return False
    b = json.loads(settings_key(config))
    if any_code:
        a.pop("code", None)
        b.pop("code", None)
    return a == b


def _process_of(row) -> dict | None:
    """The process a claim_runs row names (its config's "process"), None for an older record."""
    try:
        config = json.loads(row["config"])
    except (TypeError, ValueError):
        return None
    return config.get("process") if isinstance(config, dict) else None


def _result_from_dict(d: dict) -> ClaimResult:
    fields = ClaimResult.__dataclass_fields__
    return ClaimResult(**{k: v for k, v in d.items() if k in fields})


@dataclass
class ClaimStore:
    """Claim runs and results in the database at ``path`` (see the module docstring for the schema)."""

    path: str

    @_sqlite_errors
    def __post_init__(self):
        self.conn: sqlite3.Connection = connect(self.path)
        with self.conn:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS claim_runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, "
                "finished TEXT, status TEXT NOT NULL, config TEXT NOT NULL, claims TEXT NOT NULL, argv TEXT, "
                "provenance TEXT NOT NULL, wall_s REAL, digest TEXT)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS claim_results (run_id INTEGER NOT NULL REFERENCES claim_runs(run_id), "
                "claim_id TEXT NOT NULL, settings TEXT NOT NULL, verdict TEXT NOT NULL, seconds REAL, "
                "finished TEXT NOT NULL, reused_from INTEGER, result TEXT NOT NULL, digest TEXT, "
                "PRIMARY KEY (run_id, claim_id))")
            self.conn.execute("CREATE INDEX IF NOT EXISTS claim_results_by_claim ON claim_results (claim_id, settings)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS claim_seeds (settings TEXT NOT NULL, claim_id TEXT NOT NULL, seed INTEGER NOT NULL, "
                "run_id INTEGER NOT NULL REFERENCES claim_runs(run_id), verdict TEXT NOT NULL, result TEXT NOT NULL, "
                "digest TEXT, PRIMARY KEY (settings, claim_id, seed))")
        self._migrate_from_1()
        schema_version(self.conn, "claims", _SCHEMA)

    def _migrate_from_1(self) -> None:
        """Schema 1 (no digests) → 2: add the ``digest`` column (NULL in the old rows; module docstring)."""
        row = self.conn.execute("SELECT version FROM schema_versions WHERE component = 'claims'").fetchone()
        if row is None or int(row[0]) != 1:
            return
        self.conn.execute("BEGIN IMMEDIATE")  # one writer migrates; a concurrent opener waits, then sees version 2
        try:
            if int(self.conn.execute("SELECT version FROM schema_versions WHERE component = 'claims'").fetchone()[0]) == 1:
                for table in COLUMNS:
                    if "digest" not in [c[1] for c in self.conn.execute(f"PRAGMA table_info({table})")]:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN digest TEXT")
                self.conn.execute("UPDATE schema_versions SET version = ? WHERE component = 'claims'", (_SCHEMA,))
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def close(self) -> None:
        self.conn.close()

    # -- writing: every row with its digest ------------------------------------------------------------------
    def _put(self, table: str, values: tuple, *, replace: bool = True) -> sqlite3.Cursor:
        """Insert ``values`` (the columns of :data:`COLUMNS` ``[table]``, in order) with their digest."""
        cols = COLUMNS[table]
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        return self.conn.execute(f"{verb} INTO {table} ({', '.join(cols)}, digest) VALUES ({', '.join('?' * (len(cols) + 1))})",
                                 (*values, row_digest(*values)))

    @_sqlite_errors
    def start_run(self, config: CheckConfig, claims: list[str], argv: list[str] | None = None) -> int:
        """Insert a run record (status 'running') and return its id."""
        cfg = {"scale": config.scale, "seed": config.seed, "seeds": config.n_seeds, "model": config.model,
               **({} if config.dtype == "float32" else {"dtype": config.dtype}),
               "out_dir": str(config.out_dir), "process": _this_process()}
        self.mark_interrupted()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")  # the id is read and used under one write lock
            seq = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'claim_runs'").fetchone()
            top = self.conn.execute("SELECT COALESCE(MAX(run_id), 0) FROM claim_runs").fetchone()[0]
            run_id = max(int(top), int(seq[0]) if seq else 0) + 1  # never reuses the id of a dropped run
            self._put("claim_runs", (run_id, _now(), None, "running", json.dumps(cfg), json.dumps(list(claims)),
                                     json.dumps(argv or []), provenance_json(), None), replace=False)
        return run_id

    @_sqlite_errors
    def record(self, run_id: int, config: CheckConfig, result: ClaimResult, reused_from: int | None = None) -> None:
        """Store one finished claim of run ``run_id`` (committed at once)."""
        with self.conn:
            self._put("claim_results", (int(run_id), result.id, settings_key(config), result.verdict,
                                        None if result.seconds is None else float(result.seconds), _now(),
                                        None if reused_from is None else int(reused_from),
                                        json.dumps(result.to_dict(), default=str)))

    @_sqlite_errors
    def record_seed(self, run_id: int, config: CheckConfig, claim_id: str, seed: int, result: ClaimResult) -> None:
        """Store one finished seed of a seeded claim (committed at once), so a killed claim resumes per seed."""
        with self.conn:
            self._put("claim_seeds", (settings_key(config), claim_id, int(seed), int(run_id), result.verdict,
                                      json.dumps(result.to_dict(), default=str)))

    @_sqlite_errors
    def finish_run(self, run_id: int, status: str, wall_s: float) -> None:
        with self.conn:
            row = self._verified("claim_runs", self.conn.execute(
                "SELECT * FROM claim_runs WHERE run_id = ?", (run_id,)).fetchone())
            values = {**{c: row[c] for c in COLUMNS["claim_runs"]}, "finished": _now(), "status": status,
                      "wall_s": round(float(wall_s), 3)}
            self.conn.execute("UPDATE claim_runs SET finished = ?, status = ?, wall_s = ?, digest = ? WHERE run_id = ?",
                              (values["finished"], status, values["wall_s"],
                               row_digest(*(values[c] for c in COLUMNS["claim_runs"])), run_id))

    @_sqlite_errors
    def mark_interrupted(self) -> list[int]:
        """Mark 'interrupted' every 'running' record whose process (on this host) is gone, e.g. killed with
        ``kill -9``; returns their run ids. Records that fail their digest are left for :meth:`damaged`."""
        marked = []
        with self.conn:
            for row in self.conn.execute("SELECT * FROM claim_runs WHERE status = 'running'").fetchall():
                if self._check("claim_runs", row) is False or not _gone(_process_of(row)):
                    continue
                values = {**{c: row[c] for c in COLUMNS["claim_runs"]}, "status": "interrupted"}
                self.conn.execute("UPDATE claim_runs SET status = 'interrupted', digest = ? WHERE run_id = ?",
                                  (row_digest(*(values[c] for c in COLUMNS["claim_runs"])), row["run_id"]))
                marked.append(int(row["run_id"]))
        return marked

    # -- reading: every row verified ------------------------------------------------------------------------
    def _check(self, table: str, row) -> bool | None:
        """True when ``row`` matches its digest, None for a schema-1 row without one, False when damaged."""
        if row["digest"] is None:
            return None
        return row_digest(*(row[c] for c in COLUMNS[table])) == row["digest"]

    def _verified(self, table: str, row):
        """``row`` itself, or StoreDamagedError naming it when it fails its digest."""
        if row is not None and self._check(table, row) is False:
            what, claim = _describe(table, row)
            redo = f"logitrank check {claim} --recompute" if claim else "logitrank check --recompute"
            raise StoreDamagedError(
                f"claims store {self.path!r}: the {what} fails its checksum (its stored values changed after it was "
                f"written, e.g. a flipped bit); run `{redo}` to drop it and compute it again",
                rows=[(table, what, claim)])
        return row

    @_sqlite_errors
    def damaged(self) -> list[tuple[str, str, str | None]]:
        """(table, description, claim ID or None) of every row that fails its digest; reads every row, so a
        file SQLite cannot read raises StoreDamagedError here."""
        out = []
        for table in COLUMNS:
            for row in self.conn.execute(f"SELECT * FROM {table}"):
                if self._check(table, row) is False:
                    out.append((table, *_describe(table, row)))
        return out

    @_sqlite_errors
    def drop_damaged(self) -> list[tuple[str, str, str | None]]:
        """Delete every row that fails its digest (a damaged run record takes its results and seeds with it);
        returns what was dropped, as :meth:`damaged`. The claims are computed again by the next run."""
        dropped = []
        with self.conn:
            for table in ("claim_seeds", "claim_results", "claim_runs"):
                for row in self.conn.execute(f"SELECT rowid AS row_number, * FROM {table}").fetchall():
                    if self._check(table, row) is not False:
                        continue
                    dropped.append((table, *_describe(table, row)))
                    self._drop_row(table, row)
        return dropped

    def _drop_row(self, table: str, row) -> None:
        """Delete ``row`` of ``table`` (a run record with its results and seeds), inside the caller's transaction."""
        if table == "claim_runs":
            for child in ("claim_seeds", "claim_results"):
                self.conn.execute(f"DELETE FROM {child} WHERE run_id = ?", (row["run_id"],))
        self.conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (row["row_number"],))

    @_sqlite_errors
    def finished_seeds(self, config: CheckConfig, claim_id: str, *, any_code: bool = False) -> dict[int, ClaimResult]:
        """Seed → result of the seeds of ``claim_id`` that finished (holds or fails) under ``config``'s settings
        and code version (any version with ``any_code``); verified rows only: a schema-1 row without a
        digest is computed again."""
        rows = self.conn.execute(
            "SELECT * FROM claim_seeds WHERE claim_id = ? AND verdict IN ('holds', 'fails')", (claim_id,)).fetchall()
        return {int(r["seed"]): _result_from_dict(json.loads(r["result"])) for r in rows
                if _same_settings(r["settings"], config, any_code)
                and self._check("claim_seeds", self._verified("claim_seeds", r))}

    @_sqlite_errors
    def finished(self, config: CheckConfig, *, any_code: bool = False) -> dict[str, tuple[int, ClaimResult]]:
        """Claim ID → (run id, result): the newest reusable result of each claim with ``config``'s settings and
        code version (any version with ``any_code``); verified rows only: a schema-1 row without a digest
        is computed again."""
        rows = self.conn.execute(
            f"SELECT * FROM claim_results WHERE verdict IN ({', '.join('?' * len(RESUMABLE))}) ORDER BY finished, rowid",
            RESUMABLE).fetchall()
        out = {}
        for r in rows:
            if not _same_settings(r["settings"], config, any_code):
                continue
            if self._check("claim_results", self._verified("claim_results", r)):
                out[r["claim_id"]] = (r["reused_from"] or r["run_id"], _result_from_dict(json.loads(r["result"])))
        return out

    @_sqlite_errors
    def latest(self) -> list[dict]:
        """The newest result of every claim ever run, in ledger order, with its run's identity.

        Each row: ``ClaimResult.to_dict()`` plus ``scale``, ``seed``, ``seeds``, ``model``, ``version``,
        ``git_sha``, the ``python``/``numpy``/``torch``/``transformers`` versions of its run, ``run_id``
        (and ``reused_from`` when a resumed run reused it). Raises StoreDamagedError for a row (or its run
        record) that fails its digest.
        """
        runs = {r["run_id"]: self._verified("claim_runs", r)
                for r in self.conn.execute("SELECT * FROM claim_runs").fetchall()}
        newest = {}
        for r in self.conn.execute("SELECT * FROM claim_results ORDER BY finished, rowid").fetchall():
            newest[r["claim_id"]] = self._verified("claim_results", r)
        order = {cid: i for i, cid in enumerate(LEDGER)}
        out = []
        for cid in sorted(newest, key=lambda c: (order.get(c, len(order)), c)):
            r = newest[cid]
            run = runs.get(r["run_id"])
            cfg, prov = (json.loads(run["config"]), json.loads(run["provenance"])) if run is not None else ({}, {})
            row = {**json.loads(r["result"]), "scale": cfg.get("scale"), "seed": cfg.get("seed"),
                   "seeds": cfg.get("seeds"), "model": cfg.get("model"), "version": prov.get("logitrank"),
                   "git_sha": prov.get("git_sha"), **{k: prov.get(k) for k in ("python", "numpy", "torch", "transformers")},
                   "run_id": r["run_id"]}
            if r["reused_from"] is not None:
                row["reused_from"] = r["reused_from"]
            out.append(row)
        return out

    @_sqlite_errors
    def runs(self) -> list[dict]:
        """Every run record, oldest first, with ``config``, ``claims``, ``argv`` and ``provenance`` decoded
        (``process``: the pid, host and start time of the process that ran it, apart from ``config``),
        ``seconds`` = {claim: wall time} of the claims it ran and ``verdicts`` = {claim: verdict}. Raises
        StoreDamagedError for a row that fails its digest."""
        results: dict[int, list] = {}
        for r in self.conn.execute("SELECT * FROM claim_results ORDER BY rowid").fetchall():
            results.setdefault(r["run_id"], []).append(self._verified("claim_results", r))
        out = []
        for r in self.conn.execute("SELECT * FROM claim_runs ORDER BY run_id").fetchall():
            self._verified("claim_runs", r)
            d = {k: r[k] for k in COLUMNS["claim_runs"]}
            for k in ("config", "claims", "argv", "provenance"):
                d[k] = json.loads(d[k]) if d[k] is not None else None
            d["process"] = d["config"].pop("process", None) if isinstance(d["config"], dict) else None
            if d["status"] == "running" and _gone(_process_of(r)):
                d["status"] = "interrupted"  # its process is gone (killed); the next check run records it so
            mine = results.get(r["run_id"], [])
            d["seconds"] = {x["claim_id"]: x["seconds"] for x in mine if x["reused_from"] is None}
            d["verdicts"] = {x["claim_id"]: x["verdict"] for x in mine}
            out.append(d)
        return out
