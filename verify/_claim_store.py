"""Claim-run records and results, kept across runs in the shared SQLite store (:mod:`._store`).

``logitrank check`` writes one *run record* per invocation and one *result row* per claim as soon as
the claim finishes (one commit each, so ``kill -9`` loses at most the claim in progress). A later run
updates the claims it runs and leaves the others; :meth:`ClaimStore.latest` gives the newest result of
every claim (the ``checks.json`` export), and :meth:`ClaimStore.finished` the results a ``--resume``
run may reuse: those of the same *settings* (scale, base seed, seeds per seeded check, model) whose
verdict is holds, fails or mixed (an *error* or *not-run* is retried). Each seed of a seeded claim is
stored as it finishes, so a run killed inside a long seeded claim resumes from its next seed.

Schema (component ``"claims"``, version 1), beside the sweep tables in the same database file::

    claim_runs(run_id INTEGER PRIMARY KEY, started TEXT, finished TEXT, status TEXT,
               -- 'running' | 'completed' | 'interrupted' (a run killed -9 stays 'running')
               config TEXT,      -- JSON {scale, seed, seeds, model, out_dir}
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
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from ._check_api import CheckConfig, ClaimResult
from ._ledger import LEDGER
from ._store import connect, provenance_json, schema_version

__all__ = ["RESUMABLE", "ClaimStore", "settings_key"]

#: verdicts a ``--resume`` run reuses; "error" and "not-run" are run again
RESUMABLE = ("holds", "fails", "mixed")
_SCHEMA = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def settings_key(config: CheckConfig) -> str:
    """JSON text of the settings that determine a claim's result (the ``--resume`` match)."""
    return json.dumps({"scale": config.scale, "seed": config.seed, "seeds": config.n_seeds, "model": config.model},
                      sort_keys=True)


def _result_from_dict(d: dict) -> ClaimResult:
    fields = ClaimResult.__dataclass_fields__
    return ClaimResult(**{k: v for k, v in d.items() if k in fields})


@dataclass
class ClaimStore:
    """Claim runs and results in the database at ``path`` (see the module docstring for the schema)."""

    path: str

    def __post_init__(self):
        self.conn: sqlite3.Connection = connect(self.path)
        with self.conn:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS claim_runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, "
                "finished TEXT, status TEXT NOT NULL, config TEXT NOT NULL, claims TEXT NOT NULL, argv TEXT, "
                "provenance TEXT NOT NULL, wall_s REAL)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS claim_results (run_id INTEGER NOT NULL REFERENCES claim_runs(run_id), "
                "claim_id TEXT NOT NULL, settings TEXT NOT NULL, verdict TEXT NOT NULL, seconds REAL, "
                "finished TEXT NOT NULL, reused_from INTEGER, result TEXT NOT NULL, PRIMARY KEY (run_id, claim_id))")
            self.conn.execute("CREATE INDEX IF NOT EXISTS claim_results_by_claim ON claim_results (claim_id, settings)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS claim_seeds (settings TEXT NOT NULL, claim_id TEXT NOT NULL, seed INTEGER NOT NULL, "
                "run_id INTEGER NOT NULL REFERENCES claim_runs(run_id), verdict TEXT NOT NULL, result TEXT NOT NULL, "
                "PRIMARY KEY (settings, claim_id, seed))")
        schema_version(self.conn, "claims", _SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def start_run(self, config: CheckConfig, claims: list[str], argv: list[str] | None = None) -> int:
        """Insert a run record (status 'running') and return its id."""
        cfg = {"scale": config.scale, "seed": config.seed, "seeds": config.n_seeds, "model": config.model,
               "out_dir": str(config.out_dir)}
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO claim_runs (started, status, config, claims, argv, provenance) VALUES (?, 'running', ?, ?, ?, ?)",
                (_now(), json.dumps(cfg), json.dumps(list(claims)), json.dumps(argv or []), provenance_json()))
        return int(cur.lastrowid)

    def record(self, run_id: int, config: CheckConfig, result: ClaimResult, reused_from: int | None = None) -> None:
        """Store one finished claim of run ``run_id`` (committed at once)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO claim_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, result.id, settings_key(config), result.verdict, result.seconds, _now(), reused_from,
                 json.dumps(result.to_dict(), default=str)))

    def record_seed(self, run_id: int, config: CheckConfig, claim_id: str, seed: int, result: ClaimResult) -> None:
        """Store one finished seed of a seeded claim (committed at once), so a killed claim resumes per seed."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO claim_seeds VALUES (?, ?, ?, ?, ?, ?)",
                              (settings_key(config), claim_id, int(seed), run_id, result.verdict,
                               json.dumps(result.to_dict(), default=str)))

    def finished_seeds(self, config: CheckConfig, claim_id: str) -> dict[int, ClaimResult]:
        """Seed → result of the seeds of ``claim_id`` that finished (holds or fails) under ``config``'s settings."""
        rows = self.conn.execute(
            "SELECT seed, result FROM claim_seeds WHERE settings = ? AND claim_id = ? AND verdict IN ('holds', 'fails')",
            (settings_key(config), claim_id)).fetchall()
        return {int(r["seed"]): _result_from_dict(json.loads(r["result"])) for r in rows}

    def finish_run(self, run_id: int, status: str, wall_s: float) -> None:
        with self.conn:
            self.conn.execute("UPDATE claim_runs SET finished = ?, status = ?, wall_s = ? WHERE run_id = ?",
                              (_now(), status, round(wall_s, 3), run_id))

    def finished(self, config: CheckConfig) -> dict[str, tuple[int, ClaimResult]]:
        """Claim ID → (run id, result): the newest reusable result of each claim with ``config``'s settings."""
        rows = self.conn.execute(
            "SELECT claim_id, run_id, reused_from, result FROM claim_results WHERE settings = ? AND verdict IN "
            f"({', '.join('?' * len(RESUMABLE))}) ORDER BY finished, rowid", (settings_key(config), *RESUMABLE)).fetchall()
        out = {}
        for r in rows:
            out[r["claim_id"]] = (r["reused_from"] or r["run_id"], _result_from_dict(json.loads(r["result"])))
        return out

    def latest(self) -> list[dict]:
        """The newest result of every claim ever run, in ledger order, with its run's identity.

        Each row: ``ClaimResult.to_dict()`` plus ``scale``, ``seed``, ``seeds``, ``model``, ``version``,
        ``git_sha``, the ``python``/``numpy``/``torch``/``transformers`` versions of its run, ``run_id``
        (and ``reused_from`` when a resumed run reused it).
        """
        rows = self.conn.execute(
            "SELECT r.claim_id, r.run_id, r.reused_from, r.result, c.config, c.provenance FROM claim_results r "
            "JOIN claim_runs c USING (run_id) ORDER BY r.finished, r.rowid").fetchall()
        newest = {}
        for r in rows:
            newest[r["claim_id"]] = r
        order = {cid: i for i, cid in enumerate(LEDGER)}
        out = []
        for cid in sorted(newest, key=lambda c: (order.get(c, len(order)), c)):
            r = newest[cid]
            cfg, prov = json.loads(r["config"]), json.loads(r["provenance"])
            row = {**json.loads(r["result"]), "scale": cfg["scale"], "seed": cfg["seed"], "seeds": cfg["seeds"],
                   "model": cfg["model"], "version": prov.get("logitrank"), "git_sha": prov.get("git_sha"),
                   **{k: prov.get(k) for k in ("python", "numpy", "torch", "transformers")}, "run_id": r["run_id"]}
            if r["reused_from"] is not None:
                row["reused_from"] = r["reused_from"]
            out.append(row)
        return out

    def runs(self) -> list[dict]:
        """Every run record, oldest first, with ``config``, ``claims``, ``argv`` and ``provenance`` decoded and
        ``seconds`` = {claim: wall time} of the claims it ran."""
        out = []
        for r in self.conn.execute("SELECT * FROM claim_runs ORDER BY run_id").fetchall():
            d = dict(r)
            for k in ("config", "claims", "argv", "provenance"):
                d[k] = json.loads(d[k]) if d[k] is not None else None
            d["seconds"] = {c: s for c, s in self.conn.execute(
                "SELECT claim_id, seconds FROM claim_results WHERE run_id = ? AND reused_from IS NULL", (r["run_id"],))}
            out.append(d)
        return out
