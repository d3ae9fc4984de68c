"""Claim runs survive kill -9 and resume to the same results; two runs can share one results folder."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from logitrank.verify.cli import main

# fast, deterministic checks; E12 is seeded (two seeds) and draws a figure
CLAIMS = ["T1", "T3", "T4", "T5", "T6", "T13", "T12", "E12"]
OPTIONS = ["--seeds", "2"]
#: what changes between two runs of the same settings by design
VOLATILE = {"seconds", "run_id", "reused_from", "git_sha"}


def _comparable(path):
    rows = json.loads(path.read_text())

    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k not in VOLATILE}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    return [clean(r) for r in rows]


def _cli(out, *extra):
    return [sys.executable, "-m", "logitrank.verify.cli", "check", *CLAIMS, *OPTIONS, "--json", str(out / "checks.json"),
            *extra]


_RUN_SECONDS = []  # how long the uninterrupted run took here: kills are timed inside it


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    start = time.monotonic()
    assert main(["check", *CLAIMS, *OPTIONS, "--json", str(out / "checks.json")]) == 0
    _RUN_SECONDS.append(time.monotonic() - start)
    return _comparable(out / "checks.json")


@pytest.mark.parametrize("trial", range(3))
def test_kill_9_then_resume_gives_the_uninterrupted_results(trial, tmp_path, reference):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cli(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # wait until the first claim is stored, then kill at a random point of the rest of the run
    rng = random.Random(trial)
    deadline = time.monotonic() + 120
    while not (out / "checks.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.6 * _RUN_SECONDS[0]))  # inside the run on a fast or a slow machine
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    killed_early = proc.returncode == -signal.SIGKILL
    before = _comparable(out / "checks.json") if (out / "checks.json").exists() else []
    assert all(row in reference for row in before)  # whatever was kept is a finished, correct result
    assert main(["check", *CLAIMS, *OPTIONS, "--resume", "--json", str(out / "checks.json")]) == 0
    assert _comparable(out / "checks.json") == reference
    from logitrank.verify.claims._claim_store import ClaimStore

    runs = ClaimStore(str(out / "logitrank.sqlite")).runs()
    assert runs[-1]["status"] == "completed"
    if killed_early:
        if runs[0]["status"] == "completed":  # the kill landed after the last claim, while the process exited
            assert {r["id"] for r in before} == set(CLAIMS)
        else:
            assert runs[0]["status"] == "interrupted"  # the killed run's record stays; the resumed run marked it
        reused = set(CLAIMS) - set(runs[-1]["seconds"])
        assert reused == {r["id"] for r in before}  # --resume recomputed nothing that was finished


def test_two_concurrent_runs_on_one_folder_both_succeed(tmp_path, reference):
    out = tmp_path / "shared"
    procs = [subprocess.Popen(_cli(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert _comparable(out / "checks.json") == reference
    assert not list(out.rglob("*.tmp"))
    from logitrank.verify.claims._claim_store import ClaimStore

    runs = ClaimStore(str(out / "logitrank.sqlite")).runs()
    assert [r["status"] for r in runs] == ["completed", "completed"]
    assert all(set(r["seconds"]) == set(CLAIMS) for r in runs)


