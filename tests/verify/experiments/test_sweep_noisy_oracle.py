"""Issue 31: noisy oracles end to end in the ``learn`` task — ``oracle_error`` and ``delta`` (and ``until``,
``widening``, ``max_queries``) are sweep keys, and every approximate row under noise carries TV to the truth,
TV to the oracle, the certified bound, the widening inside it and which TV that bound is on."""

import math
from pathlib import Path

import pytest

from logitrank.algorithms import oracle_widening
from logitrank.verify.experiments.sweep import SweepSpec, load, load_spec, run_sweep
from logitrank.verify.experiments.sweep._cell_checks import APPROX_KEYS, approx_settings, check_learn

XI = 0.02
FIXED = {"family": "random_isan", "V": 2, "T": 4, "d": 2, "xi": XI, "model_seed": 3, "learner": "approx",
         "epsilon": 0.2, "n_validation": 8, "n_spanner": 16, "n_cert": 400, "delta": 0.1}


def test_a_sweep_over_oracle_error_reports_both_tvs_and_the_bound_it_used(tmp_path):
    spec = SweepSpec(name="noisy", task="learn", seeds=1, grid={"oracle_error": [0.0, "xi", 0.05]}, fixed=FIXED)
    run = run_sweep(spec, store=tmp_path / "s.sqlite")
    assert run.failed == 0, run.first_error
    rows = load(tmp_path / "s.sqlite", spec).set_index("oracle_error")
    for column in ("tv_truth", "tv_oracle", "tv_bound", "oracle_widening", "cert_bounds_tv_truth", "tv_certified"):
        assert column in rows.columns and rows[column].notna().all(), column
    told = rows.loc[0.0]  # the certificate was not told the noise: its bound is on TV to the oracle
    assert told.cert_bounds_tv_truth == 0 and told.oracle_widening == 0.0 and told.tv_certified == told.tv_oracle
    for key, xi in (("xi", XI), (0.05, 0.05)):  # told (an upper bound on) ξ: the bound is on TV to the truth
        row = rows.loc[key]
        assert row.cert_bounds_tv_truth == 1 and row.tv_certified == row.tv_truth
        assert row.oracle_widening == pytest.approx(oracle_widening(xi, 4)) and row.tv_bound >= row.oracle_widening
    assert (rows["tv_certified"] <= rows["tv_bound"]).all()  # what each certificate bounds, it bounds
    assert not math.isclose(rows.loc[0.0].tv_truth, rows.loc[0.0].tv_oracle)  # the two TVs are distinct columns


def test_exact_oracle_rows_bound_the_truth_and_need_no_oracle_column(tmp_path):
    spec = SweepSpec(name="exact", task="learn", seeds=1, grid={"until": ["accept", "budget"]},
                     fixed={**FIXED, "xi": 0.0, "widening": "log_ratio", "max_queries": 10_000})
    run_sweep(spec, store=tmp_path / "s.sqlite")
    rows = load(tmp_path / "s.sqlite", spec)
    assert (rows["cert_bounds_tv_truth"] == 1).all() and (rows["tv_certified"] == rows["tv_truth"]).all()
    assert "tv_oracle" not in rows.columns or rows["tv_oracle"].isna().all()


def test_the_new_keys_are_approx_settings():
    assert {"oracle_error", "delta", "until", "widening", "max_queries"} <= set(APPROX_KEYS)
    assert approx_settings({"xi": 0.3, "oracle_error": "xi", "until": "budget"}) == {"oracle_error": 0.3, "until": "budget"}
    check_learn({**FIXED, "oracle_error": "xi", "until": "budget", "widening": "kl", "max_queries": 50})
    check_learn({"learner": "exact", "xi": 1e-3, "oracle_error": "xi"})  # shared by a grid over both learners


@pytest.mark.parametrize("key, value, error, message", [
    ("oracle_error", "maybe", ValueError, r"oracle_error must be a number >= 0 .* or 'xi' \(the cell's xi\); got 'maybe'"),
    ("oracle_error", -1.0, ValueError, r"oracle_error must .*; got -1.0"),
    ("delta", 1.5, ValueError, r"delta must lie in \(0.0, 1.0\); got 1.5"),
    ("delta", "small", TypeError, r"delta must be a real number; got 'small'"),
    ("until", "later", ValueError, r"until must be one of \('accept', 'budget'\); got 'later'"),
    ("widening", "wide", ValueError, r"widening must be one of \('kl', 'log_ratio'\); got 'wide'"),
    ("max_queries", 0, ValueError, r"max_queries must be >= 1; got 0"),
    ("max_queries", 10.0, TypeError, r"max_queries must be an integer; got 10.0"),
])
def test_bad_values_are_refused_before_any_cell_runs(tmp_path, key, value, error, message):
    with pytest.raises(error, match=message):
        check_learn({**FIXED, key: value})
    spec = SweepSpec(name="bad", task="learn", seeds=1, grid={key: [value]}, fixed={k: v for k, v in FIXED.items() if k != key})
    with pytest.raises(error, match=r"sweep 'bad', cell 1 of 1"):
        run_sweep(spec, store=tmp_path / "s.sqlite")
    assert not (tmp_path / "s.sqlite").exists() or load(tmp_path / "s.sqlite").empty


def test_the_shipped_noisy_oracle_spec_validates():
    spec = load_spec(Path(__file__).resolve().parents[3] / "examples" / "noisy_oracle.toml")
    assert spec.task == "learn" and "oracle_error" in spec.grid
    for cell in spec.cells():
        check_learn(cell.config)
