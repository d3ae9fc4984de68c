"""Issue 35, item 4: quiet, honest logs and a dry run that is dry.

``sweep run … > log 2>&1`` and ``check … > log 2>&1`` write whole progress lines through logging and no
progress bar, even when the work inside draws tqdm bars (in this process or in loky workers); ``--dry-run``
calls no task at all, lists the rows and prices them from stored timings only.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from logitrank.verify.cli import main
from logitrank.verify.experiments.sweep import TASKS, SweepSpec, run_sweep

ROOT = Path(__file__).resolve().parents[3]

#: a task and a claim that draw tqdm bars the way the logit-matrix code does (no ``disable`` argument)
NOISY = '''
import time
from tqdm import tqdm

from logitrank.verify import ClaimResult, register


def noisy_task(config, seed):
    for _ in tqdm(range(5), desc="inner"):
        time.sleep(0.05)
    return {"x": float(seed % 7)}


@register("NOISY1", statement="a claim whose check draws bars")
def noisy_claim(config):
    for _ in tqdm(range(5), desc="inner"):
        time.sleep(0.2)
    return ClaimResult("NOISY1", "holds")
'''


def _run_logged(args, tmp_path, name):
    """Run ``python -m logitrank.verify.cli ARGS > log 2>&1`` (no terminal, no standard input); → (status, log)."""
    log = tmp_path / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("TQDM_DISABLE", None)
    with open(log, "w") as out:
        status = subprocess.run([sys.executable, "-m", "logitrank.verify.cli", *args], check=False, stdout=out,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=tmp_path, timeout=300).returncode
    return status, log.read_text()


def _no_bar(text: str) -> None:
    assert "\r" not in text and "it/s]" not in text and "inner:" not in text and "%|" not in text, text[-2000:]


def test_a_sweep_run_in_a_log_has_progress_lines_and_no_bar(tmp_path):
    (tmp_path / "noisy_mod.py").write_text(NOISY)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\ntask = "noisy_mod:noisy_task"\nseeds = 2\n[grid]\nk = [1, 2, 3]\n')
    for jobs in ("1", "2"):  # in this process, and in loky workers
        status, log = _run_logged(["sweep", "run", str(spec), "--store", str(tmp_path / f"db{jobs}.sqlite"),
                                   "--allow-import-task", "--progress-every", "0.2", "--jobs", jobs], tmp_path, f"s{jobs}")
        assert status == 0, log
        _no_bar(log)
        assert "sweep s: 6/6 rows (6 done, 0 failed, 0 cached)" in log and "ETA" in log


def test_a_check_in_a_log_has_progress_lines_and_no_bar(tmp_path):
    (tmp_path / "noisy_mod.py").write_text(NOISY)
    status, log = _run_logged(["check", "NOISY1", "T3", "--plugin", "noisy_mod", "--json", str(tmp_path / "r.json"),
                               "--progress-every", "0.3"], tmp_path, "check")
    assert status == 0, log
    _no_bar(log)
    assert "checks: 0/2 claims done; running NOISY1 for" in log and "NOISY1 holds" in log


def test_the_dry_run_calls_no_task_and_lists_the_rows(tmp_path, capsys, monkeypatch):
    calls = []

    def forbidden(config, seed):
        calls.append(config)
        raise AssertionError("the dry run ran a cell")

    forbidden.validate = TASKS["learn"].validate
    monkeypatch.setitem(TASKS, "learn", forbidden)
    start = time.perf_counter()
    assert main(["sweep", "run", str(ROOT / "examples" / "theorist_grid.toml"), "--store", str(tmp_path / "db.sqlite"),
                 "--dry-run"]) == 0
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert not calls and not (tmp_path / "db.sqlite").exists()
    assert "108 cells × 3 seeds = 324 rows; 0 cached" in out and "324 to compute" in out
    assert "the first 10 of 324 rows to compute" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.rstrip().endswith("seed #"))
    assert lines[head].split() == ["V", "T", "d", "xi", "learner", "seed", "#"]
    assert [line.split()[0] for line in lines[head + 1:head + 11]] == [str(i) for i in range(1, 11)]
    assert lines[head + 11].startswith("estimated time: unknown")
    assert seconds < 3, seconds  # the command's own work (imports excluded): well inside the 5 s it is allowed


def test_the_dry_run_prices_rows_from_stored_timings(tmp_path, capsys):
    spec = SweepSpec(name="e", task="busy", seeds=2, grid={"work": [1], "k": [1, 2]})
    run_sweep(spec, store=tmp_path / "e.sqlite")
    toml = tmp_path / "more.toml"
    toml.write_text('name = "more"\ntask = "busy"\nseeds = 2\n[grid]\nwork = [1, 2]\nk = [1, 2]\n')
    assert main(["sweep", "run", str(toml), "--store", str(tmp_path / "e.sqlite"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 row(s) from stored timings of the same task and configuration" in out
    assert "4 row(s) from stored timings of the nearest configuration" in out and "rough" in out


def test_probe_options_go_with_estimate(tmp_path, capsys):
    spec = tmp_path / "e.toml"
    spec.write_text('name = "e"\ntask = "busy"\n[grid]\nk = [1, 2]\n')
    for extra, match in ((["--dry-run", "--probe", "3"], "--probe goes with --estimate"),
                         (["--dry-run", "--estimate"], "choose one"),
                         (["--estimate", "--probe-seconds", "0"], "--probe-seconds must be > 0")):
        try:
            main(["sweep", "run", str(spec), "--store", str(tmp_path / "x.sqlite"), *extra])
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"{extra} was accepted")
        assert match in capsys.readouterr().err
