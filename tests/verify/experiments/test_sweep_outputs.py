"""What a sweep reports (issue 24): TV against the truth, rank_tol tied to ξ, failed rows kept, progress in any
log, a dry run with its cost, and figures that show the data (facets, log axes, spreads, n, failures, filters)."""

import math
import time
from pathlib import Path

import numpy as np
import pytest

from logitrank.verify.cli import main
from logitrank.verify.cli import sweep as _cli
from logitrank.verify.experiments.sweep import (
    TASKS,
    Engine,
    SweepSpec,
    load,
    load_spec,
    plot_sweep,
    run_sweep,
    validate_cells,
)
from logitrank.verify.experiments.sweep._estimate import estimate_sweep
from logitrank.verify.experiments.sweep._store import open_store, register_sweep, write_row
from logitrank.verify.experiments.sweep._tasks import learn, resolve_task
from logitrank.verify.figures import _sweep as _plot

ROOT = Path(__file__).resolve().parents[3]


def test_tv_is_measured_against_the_truth_and_the_oracle_beside_it_under_noise():
    noisy = learn({"V": 3, "T": 4, "d": 3, "xi": 1e-3, "rank_tol": "auto"}, 0)
    clean = learn({"V": 3, "T": 4, "d": 3}, 0)
    assert {"tv_truth", "tv_oracle"} <= set(noisy) and "tv_oracle" not in clean and "tv" not in noisy
    assert noisy["dim"] == 3 and noisy["tv_truth"] != noisy["tv_oracle"] and clean["tv_truth"] < 1e-12
    # rank_tol at 1e-8 learns the noise: a larger model, near-zero TV to the oracle, not to the truth
    fooled = learn({"V": 3, "T": 4, "d": 3, "xi": 1e-3, "rank_tol": 1e-8}, 0)
    assert fooled["dim"] > 3 and fooled["tv_oracle"] < 1e-10 and fooled["tv_truth"] > 1e-4


def test_rows_stored_with_one_tv_column_are_read_into_the_column_they_measured(tmp_path):
    db = tmp_path / "old.sqlite"
    conn = open_store(db)
    register_sweep(conn, "old", "learn", {"name": "old", "task": "learn", "grid": {"xi": [0.0, 1e-3]}}, time.time())
    for i, (xi, tv_to) in enumerate([(0.0, None), (1e-3, None), (1e-3, "truth")]):
        config = {"xi": xi, **({"tv_to": tv_to} if tv_to else {})}
        write_row(conn, "old", {"cell": f"{i:016x}", "seed_index": 0, "seed": i, "config": config,
                                "metrics": {"tv": [0.1, 0.2, 0.3][i]}, "status": "done", "started": 0.0, "seconds": 1.0})
    conn.close()
    df = load(db, "old", current=False).sort_values("seed")
    assert df["tv_truth"].tolist()[0] == 0.1 and math.isnan(df["tv_truth"].tolist()[1]) and df["tv_truth"].tolist()[2] == 0.3
    assert df["tv_oracle"].tolist()[1] == 0.2 and "tv" not in df.attrs["metric_columns"]
    assert df["tv"].equals(df["tv_truth"])  # the old name, kept for code written before: now always the truth's


def test_the_shipped_theorist_grid_ties_rank_tol_to_xi_and_every_cell_is_valid():
    spec = load_spec(ROOT / "examples" / "theorist_grid.toml")
    assert spec.fixed["rank_tol"] == "auto" and len(spec.cells()) == 108
    validate_cells(spec, TASKS["learn"])
    for path in sorted((ROOT / "examples").glob("*.toml")):  # every shipped example passes the checks
        shipped = load_spec(path)
        validate_cells(shipped, resolve_task(shipped.task))  # built-ins and claim:ID tasks


FAIL_SPEC = 'name = "f"\ntask = "learn"\n[fixed]\nV = 3\nT = 3\nmax_rank = 2\n[grid]\nd = [2, 3]\n'


def test_failed_rows_are_kept_and_retried_only_when_asked(tmp_path, capsys):
    spec, db = tmp_path / "f.toml", tmp_path / "f.sqlite"
    spec.write_text(FAIL_SPEC)
    argv = ["sweep", "run", str(spec), "--store", str(db)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "1 done, 1 failed" in out and "first failure: d=3, V=3, T=3, max_rank=2: RankExceededError" in err
    assert main(argv) == 1  # kept: not recomputed, still reported
    out, err = capsys.readouterr()
    assert "0 done, 0 failed, 2 cached" in out and "1 failed row(s) kept from an earlier run" in err
    assert main(argv + ["--no-retry"]) == 1 and "--no-retry is deprecated" in capsys.readouterr().err
    assert main(argv + ["--retry-failed"]) == 1
    assert "0 done, 1 failed, 1 cached" in capsys.readouterr().out


def test_progress_lines_in_a_log_count_rates_from_computed_rows_only(caplog):
    caplog.set_level("INFO", logger="logitrank.progress")
    progress = _cli._Progress("p", 10, every=0.05, terminal=False)  # not a terminal: lines through logging
    for _ in range(4):
        progress("cached")
    time.sleep(0.2)
    assert "4/10 rows (0 done, 0 failed, 4 cached); no row computed yet" in caplog.text
    progress("done")
    progress("failed")
    time.sleep(0.2)
    progress.close()
    last = [r.getMessage() for r in caplog.records if r.name == "logitrank.progress"][-1]
    assert "6/10 rows (1 done, 1 failed, 4 cached)" in last and "rows/min computed" in last and "ETA" in last
    rate = float(last.split("; ")[1].split()[0])  # rows per minute from 2 computed rows, not 6
    elapsed = time.monotonic() - progress.t0
    assert rate <= 2 / elapsed * 60 * 1.01


def test_a_run_in_a_log_prints_progress_lines(tmp_path, capsys):
    spec, db = tmp_path / "s.toml", tmp_path / "s.sqlite"
    spec.write_text('name = "s"\ntask = "busy"\nseeds = 3\n[grid]\nwork = [1]\n')
    assert main(["sweep", "run", str(spec), "--store", str(db), "--progress-every", "0.01"]) == 0
    err = capsys.readouterr().err
    assert "sweep s: 3/3 rows (3 done, 0 failed, 0 cached)" in err and "ETA" in err


def test_dry_run_prints_rows_and_an_estimate_and_stores_nothing(tmp_path, capsys):
    """Issue 35: the dry run runs nothing (rows listed, time from stored timings only); --estimate adds a probe
    and says how long it may take before it starts."""
    spec, db = tmp_path / "e.toml", tmp_path / "e.sqlite"
    spec.write_text('name = "e"\ntask = "busy"\nseeds = 2\n[grid]\nwork = [3]\nk = [1, 2, 3, 4, 5, 6]\n')
    assert main(["sweep", "run", str(spec), "--store", str(db), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 cells × 2 seeds = 12 rows; 0 cached" in out and "12 to compute" in out
    assert "same in every row: work=3" in out and "the first 10 of 12 rows to compute" in out
    assert "estimated time: unknown" in out and "`--estimate` times a probe" in out and not db.exists()
    assert "probe of 2" not in out  # nothing ran
    assert main(["sweep", "run", str(spec), "--store", str(db), "--estimate", "--probe-seconds", "30"]) == 0
    out = capsys.readouterr().out
    assert "no probe cell starts after 30.0s" in out.splitlines()[0]
    assert "estimated time:" in out and "probe of 2 cell(s)" in out and not db.exists()


def test_dry_run_estimate_is_within_2x_of_the_run(tmp_path):
    spec = SweepSpec(name="e", task="busy", seeds=2, grid={"work": [3], "k": list(range(8))})
    est = estimate_sweep(spec, store=tmp_path / "e.sqlite")
    assert (est.total, est.todo, est.cached, est.probed, est.from_stored) == (16, 16, 0, 2, 0)
    run = run_sweep(spec, store=tmp_path / "e.sqlite")
    assert 0.5 < est.seconds / run.seconds < 2, (est.seconds, run.seconds)
    # a spec with the same task and configurations (here: more seeds) is priced from the stored timings
    again = estimate_sweep(SweepSpec(name="e", task="busy", seeds=3, grid={"work": [3], "k": list(range(8))}),
                           store=tmp_path / "e.sqlite", probe=0)
    assert (again.todo, again.cached, again.from_stored, again.probed) == (8, 16, 8, 0)
    assert again.seconds == pytest.approx(8 * np.median(load(tmp_path / "e.sqlite", "e")["seconds"]), rel=0.5)


def test_estimate_without_timings_and_without_a_probe_is_unknown(tmp_path):
    est = estimate_sweep(SweepSpec(name="u", task="noop", grid={"k": [1, 2]}), store=tmp_path / "u.sqlite", probe=0)
    assert est.seconds is None and est.todo == 2
    with pytest.raises(ValueError, match=r"probe must be an int >= 0.*got -1"):
        estimate_sweep(SweepSpec(name="u", task="noop", grid={"k": [1]}), store=tmp_path / "u.sqlite", probe=-1)


# ---- figures ---------------------------------------------------------------------------------------

@pytest.fixture
def captured(monkeypatch):
    figures = []

    def save(fig, out_dir, name):
        figures.append((fig, name))
        return Path(out_dir) / f"{name}.png", Path(out_dir) / f"{name}.pdf"

    monkeypatch.setattr(_plot, "save_figure", save)
    return figures


def _fake(rows):
    """A load()-like frame: rows of (V, T, d, learner, seed_index, status, tv, accepted)."""
    import pandas as pd

    recs = [{"sweep": "fake", "cell": f"{V}{T}{d}{lr}", "seed_index": i, "status": st, "V": V, "T": T, "d": d,
             "learner": lr, "tv": tv, "accepted": acc} for V, T, d, lr, i, st, tv, acc in rows]
    df = pd.DataFrame.from_records(recs)
    df.attrs.update(config_columns=["V", "T", "d", "learner"], metric_columns=["tv", "accepted"])
    return df


def _grid(seeds=3):
    rows = []
    for V in (2, 4):
        for T in (4, 8):
            for d in (2, 4, 8):
                for lr in ("exact", "approx"):
                    for i in range(seeds):
                        rows.append((V, T, d, lr, i, "done", 10.0 ** -(16 - 2 * d) * (1 + i), 1))
    return rows


def test_plot_facets_the_fields_not_on_x_or_hue_and_chooses_log_axes(captured, tmp_path):
    plot_sweep(_fake(_grid()), x="d", y="tv", hue="V", out_dir=tmp_path)
    fig, name = captured[-1]
    axes = [a for a in fig.axes if a.get_title()]
    assert len(axes) == 4 and {a.get_title() for a in axes} == {f"learner={lr}; T={T}" for T in (4, 8)
                                                                  for lr in ("approx", "exact")}
    assert axes[0].get_yscale() == "log" and axes[0].get_xscale() == "log"  # TV over decades; d = 2, 4, 8
    assert "bars [min, max], n = 3 seeds per point" in fig._suptitle.get_text()
    plot_sweep(_fake(_grid(seeds=5)), x="d", y="tv", hue="V", where={"T": 8, "learner": "exact"}, out_dir=tmp_path)
    fig, name = captured[-1]
    assert name == "fake_tv_vs_d_by_V_T=8_learner=exact" and "T=8, learner=exact" in fig._suptitle.get_text()
    assert "bars IQR, n = 5 seeds per point" in fig._suptitle.get_text()
    assert len([a for a in fig.axes if a.has_data()]) == 1


def test_plot_draws_failed_and_not_accepted_rows_and_unequal_n(captured, tmp_path):
    rows = [r for r in _grid() if r[1] == 8 and r[3] == "approx"]
    rows[0] = (*rows[0][:5], "failed", float("nan"), float("nan"))
    rows[1] = (*rows[1][:7], 0)
    plot_sweep(_fake(rows), x="d", y="tv", hue="V", out_dir=tmp_path)
    fig, _ = captured[-1]
    labels = fig.axes[0].get_legend_handles_labels()[1] + [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    labels += [t.get_text() for t in (fig.axes[0].get_legend().get_texts() if fig.axes[0].get_legend() else [])]
    assert {"failed", "not accepted"} <= set(labels)
    assert "n per point beside it" in fig._suptitle.get_text()
    assert any(t.get_text() == "n=2" for t in fig.axes[0].texts)


def test_plot_scales_follow_the_data_unless_overridden(captured, tmp_path):
    assert _plot._log_scale([2, 3, 4, 6], axis="x") == "linear" and _plot._log_scale([2, 4, 8], axis="x") == "log"
    # issue 35: zeros do not decide the scale (no symlog): they are drawn apart at their own tick
    assert _plot._log_scale([1e-16, 0.9], axis="y") == "log" and _plot._log_scale([0.0, 1e-3, 0.5], axis="y") == "log"
    assert _plot._log_scale([1.0, 2.0, 3.0], axis="y") == "linear"
    plot_sweep(_fake(_grid()), x="d", y="tv", hue="V", where={"T": 4, "learner": "exact"}, yscale="linear",
               xscale="linear", out_dir=tmp_path)
    ax = captured[-1][0].axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "linear")


@pytest.mark.parametrize("kwargs, pattern", [
    ({"heatmap": True, "hue": "V"}, r"a heatmap shows one \(x, hue\) table, but \['T', 'learner'\] also vary"),
    ({"xscale": "loglog"}, r"xscale must be one of \['auto', 'linear', 'log'\]; got 'loglog'"),
    ({"col": "nope"}, r"col must be a column of the sweep"),
])
def test_bad_plot_calls(tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        plot_sweep(_fake(_grid()), x="d", y="tv", out_dir=tmp_path, **kwargs)


def test_plot_writes_its_files_with_the_filters_in_the_name(tmp_path, capsys):
    spec, db = tmp_path / "s.toml", tmp_path / "s.sqlite"
    spec.write_text('name = "s"\ntask = "logit_ranks"\nseeds = 2\n[grid]\nV = [2, 3]\nT = [3, 4]\nd = [1, 2]\n')
    assert main(["sweep", "run", str(spec), "--store", str(db)]) == 0
    for where in (["T=3"], ["T=4"]):  # two filtered plots no longer overwrite each other
        assert main(["sweep", "plot", "--store", str(db), "--x", "d", "--y", "max_rank", "--hue", "V", "--where",
                     *where]) == 0
    assert {p.name for p in (tmp_path / "figures").glob("*.png")} == {"s_max_rank_vs_d_by_V_T=3.png",
                                                                        "s_max_rank_vs_d_by_V_T=4.png"}
    assert main(["sweep", "plot", "--store", str(db), "--x", "d", "--y", "max_rank", "--hue", "V"]) == 0  # T faceted
    assert run_sweep(load_spec(spec), store=db, engine=Engine()).cached == 16
