"""Sweeps refuse bad input before any work, run no code a spec names, detect damaged rows, leave no workers (issue 23)."""

import importlib.metadata
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from logitrank.verify.cli import main
from logitrank.verify.experiments.sweep import (
    ENTRY_POINT_GROUP,
    DamagedRowError,
    Engine,
    SweepSpec,
    SweepStoreError,
    load,
    load_spec,
    run_sweep,
)


def _spec(task="learn", grid=None, fixed=None, **kw):
    return SweepSpec(name="bad", task=task, grid=grid or {"d": [2]}, fixed=fixed or {}, **kw)


# every cell is checked against its task before any runs: (task, grid, type, message)
BAD_CELLS = [
    ("learn", {"d": [2, -2]}, ValueError, r"cell 2 of 2 \(d=-2\): d must be >= 1; got -2"),
    ("learn", {"V": ["abc"]}, TypeError, r"cell 1 of 1 \(V='abc'\): V must be an integer; got 'abc' of type str"),
    ("learn", {"d": [0]}, ValueError, r"d must be >= 1; got 0"),
    ("learn", {"V": [1]}, ValueError, r"\(V=1\): V must be >= 2; got 1"),
    ("learn", {"d": [2.5]}, TypeError, r"d must be an integer; got 2.5 of type float"),
    ("learn", {"d": [True]}, TypeError, r"d must be an integer; got True of type bool"),
    ("learn", {"T": [-3]}, ValueError, r"T must be >= 1; got -3"),
    ("learn", {"epsilon": [2.0]}, ValueError, r"epsilon must lie in \(0.0, 1.0\); got 2.0"),
    ("learn", {"xi": [-1e-3]}, ValueError, r"xi must lie in \[0.0, inf\]; got -0.001"),
    ("learn", {"V": [10**6], "T": [1000], "d": [1000]}, ValueError, r"random_isan model .* needs about .* GiB.*smaller"),
    ("learn", {"rank_tol": ["tight"]}, ValueError, r"rank_tol must be a number in \(0, 1\) or \"auto\".*got 'tight'"),
    ("learn", {"learner": ["approx"], "beta": [0.5]}, ValueError, r"beta"),
    ("learn", {"measure_tv": [1]}, TypeError, r"measure_tv must be true or false; got 1"),
    ("learn", {"family": ["power_law_isan"], "d": [3]}, ValueError, r"d must be even for family 'power_law_isan'"),
    ("spectrum", {"T": [4], "level": [9]}, ValueError, r"level must be <= 3; got 9"),
    ("logit_ranks", {"V": [64], "T": [8]}, ValueError, r"above the limits of level_logit_matrix"),
    ("busy", {"work": [-1]}, ValueError, r"work must be >= 0; got -1"),
]


@pytest.mark.parametrize("task, grid, kind, pattern", BAD_CELLS)
def test_bad_cells_are_refused_before_any_cell_runs(tmp_path, task, grid, kind, pattern):
    store = tmp_path / "x.sqlite"
    with pytest.raises(kind, match=pattern):
        run_sweep(_spec(task, grid), store=store)
    assert not store.exists()  # refused before the store is even opened


def test_a_bad_cell_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\ntask = "learn"\n[grid]\nd = [2, 4, -2]\n')
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "run", str(spec), "--store", str(tmp_path / "x.sqlite")])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "cell 3 of 3 (d=-2): d must be >= 1; got -2" in last and not (tmp_path / "x.sqlite").exists()


@pytest.mark.parametrize("make, kind, pattern", [
    (lambda p: SweepSpec(name="e", task="noop", grid={}), ValueError, r"grid must name at least one key"),
    (lambda p: SweepSpec(name="e", task="noop", grid=[{}]), ValueError, r"grid\[0\] must name at least one key"),
    (lambda p: (p / "e.toml").write_text('name = "e"\ntask = "noop"\n[grid]\n') and load_spec(p / "e.toml"),
     ValueError, r"e.toml: grid must name at least one key .* one key one value"),
    (lambda p: load_spec(p), ValueError, r"is a directory; give the path of a TOML spec file"),
    (lambda p: (p / "b.toml").write_bytes(b"\xff\xfe\x00") and load_spec(p / "b.toml"), ValueError,
     r"is not a UTF-8 text file"),
    (lambda p: load(p / "none" / "x.sqlite"), FileNotFoundError, r"no results database there \(nothing was created\)"),
    (lambda p: load(p), ValueError, r"path must name a results database file, not a folder"),
])
def test_silent_cases_are_clear_errors(tmp_path, make, kind, pattern):
    with pytest.raises(kind, match=pattern):
        make(tmp_path)
    assert not (tmp_path / "none").exists()  # load() of a missing store creates neither file nor folder


def test_sweep_run_on_a_directory_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "run", str(tmp_path)])
    assert exc.value.code == 2 and "is a directory" in capsys.readouterr().err


# ---- a spec names only registered tasks -------------------------------------------------------------

_EVIL = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def task(config, seed):
    return {{"x": 1.0}}
'''


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    (tmp_path / "evil_sweep_mod.py").write_text(_EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evil_sweep_mod", raising=False)
    return marker


def test_a_spec_cannot_import_a_callable_without_the_flag(tmp_path, evil_module, capsys):
    spec = SweepSpec(name="i", task="evil_sweep_mod:task", grid={"d": [1]})
    with pytest.raises(ValueError, match=r"'evil_sweep_mod:task' is not a registered task .*cannot run arbitrary "
                                         r"code.*'logitrank.sweep_tasks'.*--allow-import-task"):
        run_sweep(spec, store=tmp_path / "i.sqlite")
    with pytest.raises(ValueError, match=r"'subprocess:call' is not a registered task"):
        run_sweep(SweepSpec(name="i", task="subprocess:call", grid={"args": ["true"]}), store=tmp_path / "i.sqlite")
    assert not evil_module.exists() and not (tmp_path / "i.sqlite").exists()
    toml = tmp_path / "i.toml"
    toml.write_text('name = "i"\ntask = "evil_sweep_mod:task"\n[grid]\nd = [1]\n')
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "run", str(toml), "--store", str(tmp_path / "i.sqlite")])
    assert exc.value.code == 2 and "--allow-import-task" in capsys.readouterr().err and not evil_module.exists()
    assert run_sweep(spec, store=tmp_path / "i.sqlite", allow_import_task=True).done == 1  # the explicit choice
    assert evil_module.read_text() == "imported"


def test_an_entry_point_task_needs_no_flag(tmp_path, evil_module, monkeypatch):
    ep = importlib.metadata.EntryPoint(name="mytask", value="evil_sweep_mod:task", group=ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [ep] if kw.get("group") == ENTRY_POINT_GROUP else real(**kw))
    for name in ("mytask", "evil_sweep_mod:task"):  # by the entry point's name or its value
        assert run_sweep(SweepSpec(name="ep", task=name, grid={"d": [1]}), store=tmp_path / f"{name[:2]}.sqlite").done == 1


# ---- stored rows carry a digest ------------------------------------------------------------------

def _ranks(db, **kw):
    spec = SweepSpec(name="r", task="logit_ranks", grid={"d": [1, 2]}, seeds=2, fixed={"V": 2, "T": 4})
    return spec, run_sweep(spec, store=db, **kw)


def test_a_flipped_digit_in_a_stored_metric_is_detected_and_recomputed(tmp_path, capsys):
    db = tmp_path / "d.sqlite"
    spec, _ = _ranks(db)
    with sqlite3.connect(db) as conn:  # what a bit flip or a hand edit does: SQLite's integrity check still passes
        (rowid, metrics), = conn.execute("SELECT rowid, metrics FROM sweep_rows WHERE metrics LIKE '%\"max_rank\": 2%' "
                                         "LIMIT 1").fetchall()
        conn.execute("UPDATE sweep_rows SET metrics = ? WHERE rowid = ?", (metrics.replace('"max_rank": 2', '"max_rank": 9'), rowid))
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    pattern = r"sweep 'r' in .*d.sqlite': the row of cell [0-9a-f]{16} seed_index \d \(seed \d+, config .*\) does not " \
              r"match its digest.*--recompute"
    with pytest.raises(DamagedRowError, match=pattern):
        load(db, "r")
    with pytest.raises(DamagedRowError, match=pattern):
        run_sweep(spec, store=db)  # a damaged row is never counted as done
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "show", "--store", str(db)])
    assert exc.value.code == 2 and "--recompute" in capsys.readouterr().err
    redo = run_sweep(spec, store=db, engine=Engine(recompute=True))
    assert (redo.done, redo.cached) == (1, 3)
    assert load(db, "r").groupby("d")["max_rank"].max().to_dict() == {1: 1, 2: 2}


def test_a_damaged_database_file_is_one_clear_error(tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    _ranks(db)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    data[page:] = b"\x5a" * (len(data) - page)  # every page after the header page overwritten
    db.write_bytes(bytes(data))
    with pytest.raises(SweepStoreError, match=r"results database .*c.sqlite' cannot be read .*Move it aside"):
        load(db, "r")
    (tmp_path / "text.sqlite").write_text("not a database at all, " * 100)
    with pytest.raises(SweepStoreError, match=r"text.sqlite' cannot be read"):
        load(tmp_path / "text.sqlite")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "show", "--store", str(db)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exc.value.code == 2 and "c.sqlite" in err and "Move it aside" in err


def test_rows_of_a_schema_1_store_are_sealed_once_and_then_verified(tmp_path):
    db = tmp_path / "old.sqlite"
    _ranks(db)
    with sqlite3.connect(db) as conn:  # turn it into what the previous version wrote: no digest columns, version 1
        conn.execute("ALTER TABLE sweep_rows DROP COLUMN digest")
        conn.execute("ALTER TABLE sweeps DROP COLUMN digest")
        conn.execute("UPDATE schema_versions SET version = 1 WHERE component = 'sweep'")
    assert len(load(db, "r")) == 4  # migrated on open: accepted as found
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_versions WHERE component = 'sweep'").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM sweep_rows WHERE digest IS NULL").fetchone()[0] == 0
        conn.execute("UPDATE sweep_rows SET seconds = seconds + 1 WHERE rowid = 1")
    with pytest.raises(DamagedRowError):
        load(db, "r")


# ---- a killed driver leaves no workers -------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()  # a zombie has exited (only its parent's reaping is left)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads worker states from /proc")
def test_workers_exit_within_seconds_of_a_kill_9_of_the_driver(tmp_path):
    spec = tmp_path / "k.toml"
    spec.write_text('name = "k"\ntask = "busy"\nseeds = 60\n[grid]\nwork = [3]\n')
    db = tmp_path / "k.sqlite"
    cmd = [sys.executable, "-m", "logitrank.verify.cli", "sweep", "run", str(spec), "--store", str(db), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(workers) < 2:
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    workers = {int(w.split(":")[-1]) for (w,) in conn.execute("SELECT worker FROM sweep_rows")}
            except sqlite3.OperationalError:
                pass
            time.sleep(0.05)
        assert len(workers) == 2, "the two workers never reported a row"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    left = [p for p in workers if _alive(p)]
    for p in left:  # never leave them behind, even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {left} outlived the killed driver by 5 s"


def test_a_task_returning_no_numbers_fails_its_rows_with_the_reason(tmp_path, capsys):
    result = run_sweep(SweepSpec(name="s", task="mine", grid={"d": [1, 2]}), store=tmp_path / "s.sqlite",
                       task=lambda config, seed: "not a dict")
    assert result.failed == 2
    assert re.fullmatch(r"d=[12]: TypeError: a task must return a dict of numbers; got str.*", result.first_error)
