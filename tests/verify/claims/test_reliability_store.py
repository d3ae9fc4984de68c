"""Issue 23: every stored claim row carries a digest verified on read; --recompute redoes damaged rows;
schema-1 rows are migrated (listed, never reused by --resume); atomic writes never touch the umask."""

import json
import os
import sqlite3

import pytest

from logitrank.verify._store import row_digest
from logitrank.verify.claims._check_api import CheckConfig, ClaimResult
from logitrank.verify.claims._claim_store import COLUMNS, ClaimStore, StoreDamagedError
from logitrank.verify.cli import main

T3 = ClaimResult(id="T3", verdict="holds", figures={"max TV": 2.16e-16}, seconds=0.25)


def _store(path, seeded: bool = False):
    store = ClaimStore(str(path))
    config = CheckConfig(out_dir=str(path.parent))
    run = store.start_run(config, ["T3", "E12"])
    store.record(run, config, T3)
    if seeded:
        store.record_seed(run, config, "E12", 0, ClaimResult(id="E12", verdict="holds", figures={"α Gaussian": 0.0145}))
    store.finish_run(run, "completed", 1.5)
    store.close()
    return config


def test_every_row_carries_the_digest_of_its_values(tmp_path):
    _store(tmp_path / "s.sqlite", seeded=True)
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        for table, cols in COLUMNS.items():
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            assert rows and all(r["digest"] == row_digest(*(r[c] for c in cols)) for r in rows), table


def test_a_flipped_digit_in_the_file_is_found_on_read(tmp_path):
    path = tmp_path / "s.sqlite"
    config = _store(path)
    data = bytearray(path.read_bytes())
    at = data.find(b"2.16e-16")
    data[at] = ord("9")  # 2.16e-16 → 9.16e-16, a valid number in valid JSON in a valid page
    path.write_bytes(bytes(data))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # SQLite sees nothing wrong
    store = ClaimStore(str(path))
    for read in (store.latest, store.runs, lambda: store.finished(config)):
        with pytest.raises(StoreDamagedError, match=r"the claim_results row of run 1, claim T3 fails its checksum"):
            read()
    assert store.damaged() == [("claim_results", "claim_results row of run 1, claim T3", "T3")]


@pytest.mark.parametrize(("table", "column", "value"), [
    ("claim_runs", "config", '{"scale": "full", "seed": 0, "seeds": 3, "model": "tiny", "out_dir": "x"}'),
    ("claim_seeds", "verdict", "fails"),
    ("claim_results", "seconds", 0.26),
])
def test_any_altered_column_of_any_table_is_named(tmp_path, table, column, value):
    path = tmp_path / "s.sqlite"
    _store(path, seeded=True)
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {table} SET {column} = ?", (value,))
    store = ClaimStore(str(path))
    [(name, what, _)] = store.damaged()
    assert name == table and what.startswith(table)


def test_recompute_drops_the_damaged_row_and_the_run_restores_it(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["check", "T3", "--json", str(out / "checks.json")]
    assert main(argv) == 0
    with sqlite3.connect(out / "logitrank.sqlite") as conn:
        conn.execute("UPDATE claim_results SET verdict = 'fails'")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--resume"])
    assert stop.value.code == 2 and "T3 --recompute" in capsys.readouterr().err
    assert main([*argv, "--resume", "--recompute"]) == 0
    assert "--recompute: dropped 1 damaged row(s)" in capsys.readouterr().err
    store = ClaimStore(str(out / "logitrank.sqlite"))
    assert store.damaged() == [] and [r["verdict"] for r in store.latest()] == ["holds"]
    assert json.loads((out / "checks.json").read_text())[0]["verdict"] == "holds"


def test_schema_1_rows_are_migrated_listed_and_never_reused(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the schema-1 tables, as logitrank wrote them before digests
        conn.execute("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_versions VALUES ('claims', 1)")
        conn.execute("CREATE TABLE claim_runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, "
                     "finished TEXT, status TEXT NOT NULL, config TEXT NOT NULL, claims TEXT NOT NULL, argv TEXT, "
                     "provenance TEXT NOT NULL, wall_s REAL)")
        conn.execute("CREATE TABLE claim_results (run_id INTEGER NOT NULL, claim_id TEXT NOT NULL, settings TEXT NOT NULL, "
                     "verdict TEXT NOT NULL, seconds REAL, finished TEXT NOT NULL, reused_from INTEGER, result TEXT NOT NULL, "
                     "PRIMARY KEY (run_id, claim_id))")
        conn.execute("CREATE TABLE claim_seeds (settings TEXT NOT NULL, claim_id TEXT NOT NULL, seed INTEGER NOT NULL, "
                     "run_id INTEGER NOT NULL, verdict TEXT NOT NULL, result TEXT NOT NULL, PRIMARY KEY (settings, claim_id, seed))")
        config = CheckConfig(out_dir=str(tmp_path))
        from logitrank.verify.claims._claim_store import settings_key

        conn.execute("INSERT INTO claim_runs VALUES (1, 'then', 'then', 'completed', ?, '[\"T3\"]', '[]', '{}', 1.0)",
                     (json.dumps({"scale": "quick", "seed": 0, "seeds": 3, "model": "tiny", "out_dir": "x"}),))
        conn.execute("INSERT INTO claim_results VALUES (1, 'T3', ?, 'holds', 0.1, 'then', NULL, ?)",
                     (settings_key(config), json.dumps(T3.to_dict())))
    store = ClaimStore(str(path))
    assert store.conn.execute("SELECT version FROM schema_versions WHERE component = 'claims'").fetchone()[0] == 2
    assert [r["id"] for r in store.latest()] == ["T3"] and store.damaged() == []  # listed, cannot be judged
    assert store.finished(config) == {}  # never reused by --resume: recomputed, then stored with a digest
    run = store.start_run(config, ["T3"])
    assert run == 2
    store.record(run, config, T3)
    assert set(store.finished(config)) == {"T3"}


def test_atomic_writes_never_touch_the_umask(tmp_path, monkeypatch):
    from logitrank._io import atomic_write_text

    old = os.umask(0o027)
    try:
        def forbidden(*_):
            raise AssertionError("os.umask changed the process-wide umask")

        monkeypatch.setattr(os, "umask", forbidden)
        atomic_write_text(tmp_path / "new.txt", "a")
        assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640  # 0o666 less the umask
    finally:
        monkeypatch.undo()
        os.umask(old)
