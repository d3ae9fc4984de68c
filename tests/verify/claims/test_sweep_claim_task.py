"""Claims under the sweep engine (issue 22): ``task = "claim:ID"`` runs the check per cell and stores its figures."""

import pytest

from logitrank.verify.experiments.sweep import SweepSpec, load, run_sweep
from logitrank.verify.experiments.sweep._tasks import resolve_task


def test_a_claim_runs_per_cell_and_lands_in_the_store(tmp_path):
    spec = SweepSpec(name="t3", task="claim:T3", grid={"scale": ["quick"]}, seeds=2)
    run = run_sweep(spec, store=tmp_path / "s.sqlite")
    assert (run.done, run.failed) == (2, 0)
    rows = load(tmp_path / "s.sqlite", "t3")
    assert set(rows["holds"]) == {1} and set(rows["verdict_score"]) == {1.0}
    assert (rows["max TV"] < 1e-12).all()


def test_claim_tasks_are_validated_before_any_cell_runs(tmp_path):
    with pytest.raises(ValueError, match="task claim:NOPE: no registered check"):
        resolve_task("claim:NOPE").validate({})
    with pytest.raises(ValueError, match=r"unknown setting 'nope'"):
        resolve_task("claim:B1").validate({"nope": 3})
    with pytest.raises(ValueError, match="needs a claim ID"):
        resolve_task("claim:")
