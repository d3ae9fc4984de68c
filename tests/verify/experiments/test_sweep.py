"""The sweep engine: specs, per-cell seeds, the SQLite store, resume, failures, summaries and figures."""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from logitrank.verify.experiments.sweep import (
    Engine,
    SweepSpec,
    cell_hash,
    cell_seeds,
    expand_grid,
    load,
    load_spec,
    plot_sweep,
    run_sweep,
    summarize,
)


def _spec(**kw):
    base = {"name": "s", "task": "logit_ranks", "grid": {"d": [1, 2]}, "seeds": 2, "fixed": {"V": 2, "T": 4}}
    return SweepSpec(**{**base, **kw})


def test_grid_forms_expand_to_the_same_cells():
    product = expand_grid({"V": [2, 4], "d": [1, 2]})
    assert product == ({"V": 2, "d": 1}, {"V": 2, "d": 2}, {"V": 4, "d": 1}, {"V": 4, "d": 2})
    listed = expand_grid([{"V": 2, "d": [1, 2]}, {"V": 4, "d": [1, 2]}, {"V": 2, "d": 1}])  # last is a duplicate
    assert listed == product
    assert expand_grid({"d": 3}, {"V": 2}) == ({"d": 3, "V": 2},)


def test_seeds_are_reproducible_independent_and_order_free():
    a = {c.hash: c.seeds for c in _spec(grid={"d": [1, 2, 3]}).cells()}
    b = {c.hash: c.seeds for c in _spec(grid={"d": [3, 1]}).cells()}  # reordered, one cell fewer
    assert all(a[h] == s for h, s in b.items())
    seeds = [s for ss in a.values() for s in ss]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**63 for s in seeds)
    assert cell_seeds(0, "ab", 3) != cell_seeds(1, "ab", 3)  # the base seed matters
    assert cell_hash({"d": 1}, "learn") != cell_hash({"d": 1}, "spectrum")  # so does the task


def test_run_stores_one_row_per_cell_and_seed_and_rerun_is_cached(tmp_path):
    db = tmp_path / "r.sqlite"
    first = run_sweep(_spec(), store=db)
    assert (first.total, first.done, first.failed, first.cached) == (4, 4, 0, 0)
    again = run_sweep(_spec(grid={"d": [1, 2, 3]}), store=db)  # one new cell: only its seeds run
    assert (again.done, again.cached) == (2, 4)
    df = load(db, "s")
    assert len(df) == 6 and set(df["status"]) == {"done"}
    assert df.groupby("d")["max_rank"].max().to_dict() == {1: 1, 2: 2, 3: 3}  # planted logit ranks recovered
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    prov = conn.execute("SELECT provenance FROM sweep_rows LIMIT 1").fetchone()[0]
    assert '"logitrank"' in prov and '"git_sha"' in prov


def test_failing_cells_are_recorded_and_the_sweep_goes_on(tmp_path):
    db = tmp_path / "f.sqlite"
    spec = _spec(task="learn", grid={"d": [2, 3]}, seeds=1, fixed={"V": 3, "T": 3, "max_rank": 2})
    # d=2 is learned; d=3 needs 3 spanning histories at level 1, more than max_rank=2: RankExceededError
    result = run_sweep(spec, store=db)
    assert result.failed == 1 and result.done == 1
    df = load(db, "s")
    failed = df[df["status"] == "failed"]
    assert failed["d"].tolist() == [3] and "RankExceededError" in failed["error"].iloc[0]
    assert math.isnan(failed["tv"].iloc[0])
    again = run_sweep(spec, store=db)  # failed rows are kept by default (a failure is a result)
    assert again.cached == 2 and again.first_error is None
    retried = run_sweep(spec, store=db, engine=Engine(retry_failed=True))
    assert retried.failed == 1 and "RankExceededError" in retried.first_error and "d=3" in retried.first_error


def test_summary_reports_median_and_iqr_over_seeds(tmp_path):
    db = tmp_path / "m.sqlite"
    run_sweep(_spec(task="busy", grid={"work": [0]}, seeds=5, fixed={}), store=db)
    df = load(db, "s")
    table = summarize(df)
    assert table["seeds"].tolist() == [5]
    assert table["x"].iloc[0] == pytest.approx(np.median(df["x"]))
    assert table["x_q25"].iloc[0] == pytest.approx(np.quantile(df["x"], 0.25))


def test_two_jobs_give_the_same_numbers_as_one(tmp_path):
    spec = _spec(task="learn", grid={"V": [2, 3], "xi": [0.0, 1e-3]}, seeds=2, fixed={"T": 4, "d": 2})
    run_sweep(spec, store=tmp_path / "a.sqlite")
    run_sweep(spec, store=tmp_path / "b.sqlite", engine=Engine(jobs=2))
    cols = ["cell", "seed_index", "seed", "tv", "queries", "dim"]
    a, b = (load(tmp_path / f"{x}.sqlite", "s")[cols].sort_values(["cell", "seed_index"]).reset_index(drop=True)
            for x in "ab")
    assert a.equals(b)


def test_plots_write_line_and_heatmap_figures(tmp_path):
    db = tmp_path / "p.sqlite"
    run_sweep(_spec(grid={"d": [1, 2], "V": [2, 3]}, fixed={"T": 3}), store=db)
    df = load(db, "s")
    for heat in (False, True):
        png, pdf = plot_sweep(df, x="d", y="max_rank", hue="V", heatmap=heat, out_dir=tmp_path)
        assert png.stat().st_size > 1000 and pdf.exists()
    with pytest.raises(ValueError, match=r"y must be a column of the sweep, one of .*got 'nope'"):
        plot_sweep(df, x="d", y="nope", out_dir=tmp_path)


def test_kill_9_loses_only_cells_in_flight(tmp_path):
    spec = tmp_path / "k.toml"
    spec.write_text('name = "k"\ntask = "busy"\nseeds = 40\n[grid]\nwork = [3]\n')
    db = tmp_path / "k.sqlite"
    cmd = [sys.executable, "-m", "logitrank.verify.cli", "sweep", "run", str(spec), "--store", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if db.exists():
                try:
                    if sqlite3.connect(db, timeout=5).execute("SELECT count(*) FROM sweep_rows").fetchone()[0] >= 3:
                        break
                except sqlite3.OperationalError:
                    pass
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    kept = len(load(db, "k"))
    assert 3 <= kept < 40
    rerun = run_sweep(load_spec(spec), store=db)
    assert rerun.cached == kept and rerun.done == 40 - kept


BAD_SPECS = [
    ({"name": "a", "task": "noop", "grid": {"d": [1]}, "sedes": 2}, r"unknown key\(s\) \['sedes'\]; allowed keys are \['name'"),
    ({"name": "a", "task": "noop"}, r"missing required key\(s\) \['grid'\]"),
    ({"name": "a b", "task": "noop", "grid": {"d": [1]}}, r"name must be a non-empty string of letters"),
    ({"name": "a", "task": "noop", "grid": {"d": [1]}, "seeds": 0}, r"seeds must be an int in \[1, 1000\]; got 0"),
    ({"name": "a", "task": "noop", "grid": {"d": []}}, r"grid.d must list at least one value"),
    ({"name": "a", "task": "noop", "grid": {"d": [{"x": 1}]}}, r"grid.d must be a number, bool or string; got dict"),
    ({"name": "a", "task": "noop", "grid": {"d": [1]}, "fixed": {"d": 2}}, r"grid.d is also in fixed"),
    ({"name": "a", "task": "noop", "grid": {"d": [float("nan")]}}, r"grid.d must be finite"),
]


@pytest.mark.parametrize("data, pattern", BAD_SPECS)
def test_bad_specs_name_the_key_and_the_allowed_values(data, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        SweepSpec.from_dict(data)


BAD_RUNS = [
    (_spec(task="nope"), None, r"task must be a registered task \[.*'learn'.*\] \(or 'package.module:function' with --allow-import-task\); got 'nope'"),
    (_spec(task="learn", fixed={"family": "isan"}), None, r"family must be one of \[.*'random_isan'.*\]; got 'isan'"),
    (_spec(task="learn", fixed={"learner": "both"}), None, r"learner must be one of \['exact', 'approx'\]; got 'both'"),
    (_spec(task="learn", fixed={"Vocab": 2}), None, r"task 'learn': unknown config key\(s\) \['Vocab'\]; allowed keys"),
    (_spec(task="json:nope"), None, r"task 'json:nope' is not a registered task .*--allow-import-task"),
    (_spec(), {"jobs": 0}, r"jobs must be an int >= 1 or -1"),
    (_spec(), {"backend": "dask"}, r"backend 'dask' needs scheduler"),
    (_spec(), {"backend": "ray"}, r"backend must be one of \('loky', 'dask'\); got 'ray'"),
]


@pytest.mark.parametrize("spec, engine, pattern", BAD_RUNS)
def test_bad_runs_fail_before_any_cell(tmp_path, spec, engine, pattern):
    with pytest.raises(ValueError, match=pattern):
        run_sweep(spec, store=tmp_path / "x.sqlite", engine=Engine(**engine) if engine else None)
    assert not (tmp_path / "x.sqlite").exists() or len(load(tmp_path / "x.sqlite")) == 0


def test_shipped_theorist_spec_is_valid_and_short():
    path = Path(__file__).resolve().parents[3] / "examples" / "theorist_grid.toml"
    assert len(path.read_text().splitlines()) <= 15
    spec = load_spec(path)
    assert len(spec.cells()) == 3 * 2 * 3 * 3 * 2 and spec.seeds == 3


def test_another_base_seed_reuses_no_rows_and_load_keeps_the_current_spec(tmp_path):
    db = tmp_path / "b.sqlite"
    run_sweep(_spec(), store=db)
    rerun = run_sweep(_spec(seed=7), store=db)
    assert (rerun.done, rerun.cached) == (4, 0)
    current = load(db, "s")
    assert len(current) == 4 and set(current["seed"]) == {s for c in _spec(seed=7).cells() for s in c.seeds}
    assert len(load(db, "s", current=False)) == 8


def _warning_task(config, seed):
    import warnings

    if config["d"] == 2:
        warnings.warn("did not converge", RuntimeWarning)
    return {"x": 1.0}


def test_cell_warnings_are_stored_and_reported(tmp_path):
    from logitrank.verify.experiments.sweep import SweepCellWarning

    db = tmp_path / "w.sqlite"
    with pytest.warns(SweepCellWarning, match=r"1 of 2 finished rows raised warnings"):
        result = run_sweep(_spec(task="mine", seeds=1, fixed={}), store=db, task=_warning_task)
    assert result.warned == 1
    df = load(db, "s").set_index("d")
    assert df.loc[2, "warnings"] == "RuntimeWarning: did not converge" and df["warnings"].isna().sum() == 1


@pytest.mark.parametrize("family", ["random_isan", "power_law_isan", "perturbed_isan", "noisy_parity", "copying", "ssm"])
def test_every_family_runs_through_the_built_in_tasks(tmp_path, family):
    spec = SweepSpec(name="fam", task="logit_ranks", grid={"family": [family]}, seeds=1)
    assert run_sweep(spec, store=tmp_path / "f.sqlite").done == 1
    spectrum = run_sweep(SweepSpec(name="spec", task="spectrum", grid={"family": [family]}, seeds=1),
                         store=tmp_path / "f.sqlite")
    assert spectrum.done == 1
    row = load(tmp_path / "f.sqlite", "spec").iloc[0]
    assert 0 <= row["sigma_ratio"] <= 1 + 1e-12 and row["kl_to_rank"] >= -1e-12


def test_numpy_grid_values_are_accepted_and_stored_as_plain_numbers(tmp_path):
    spec = _spec(grid={"d": np.arange(1, 3)}, fixed={"V": np.int64(2), "T": 4})
    assert spec.cells() == _spec().cells()
    assert run_sweep(spec, store=tmp_path / "n.sqlite").done == 4


def test_model_seed_shares_one_model_across_cells_and_measure_tv_false_skips_tv():
    from logitrank.verify.experiments.sweep import build_model
    from logitrank.verify.experiments.sweep._tasks import learn

    a, _ = build_model({"V": 3, "T": 3, "d": 2, "model_seed": 5}, 1)
    b, _ = build_model({"V": 3, "T": 3, "d": 2, "model_seed": 5}, 2)
    c, _ = build_model({"V": 3, "T": 3, "d": 2}, 2)
    # exact: a and b are the same model (same model_seed), so the same computation, rerun
    assert (a.distribution() == b.distribution()).all() and not (a.distribution() == c.distribution()).all()
    out = learn({"V": 2, "T": 3, "d": 1, "measure_tv": False}, 0)
    assert "tv" not in out and out["queries"] > 0


def test_load_with_a_spec_selects_exactly_its_rows(tmp_path):
    db = tmp_path / "l.sqlite"
    run_sweep(_spec(seed=1), store=db)
    run_sweep(_spec(seed=2, grid={"d": [1]}), store=db)  # same name, another base seed and grid
    assert len(load(db, _spec(seed=1))) == 4 and len(load(db, _spec(seed=2, grid={"d": [1]}))) == 2
    assert len(load(db, "s")) == 2 and len(load(db, "s", current=False)) == 6
