"""X1 on the sweep engine: the verdict rule (mutation: a planted polynomial growth fails) and a tiny end-to-end run."""

from pathlib import Path

import pytest

from logitrank.verify import CheckConfig, run_check
from logitrank.verify.claims.checks import _sweep_claims as x1
from logitrank.verify.experiments.sweep import load_spec


def test_rule_holds_for_flat_tv_and_fails_for_planted_polynomial_growth():
    d = [2, 3, 4, 6]
    assert x1.x1_verdict(d, [0.10, 0.09, 0.11, 0.10], [0.05] * 4)[0] == "holds"
    verdict, k = x1.x1_verdict(d, [0.01 * x for x in d], [0.05] * 4)  # TV ∝ d: a polynomial dependence
    assert verdict == "fails" and k == pytest.approx(1.0)
    # ε_avg drifting with d is divided out: TV ∝ ε_avg ∝ d is not a dependence on d at fixed ε_avg
    assert x1.x1_verdict(d, [0.01 * x for x in d], [0.005 * x for x in d])[0] == "holds"


def test_shipped_spec_is_the_quick_grid():
    spec = load_spec(Path(__file__).resolve().parents[3] / "examples" / "x1_tv_vs_d.toml")
    quick = x1.x1_spec("quick", 0)
    assert spec.fixed == quick.fixed and spec.grid == quick.grid and spec.task == quick.task


def test_x1_runs_on_the_engine_and_a_rerun_reads_the_store(tmp_path, monkeypatch):
    config = CheckConfig(scale="quick", out_dir=str(tmp_path), seeds=1, overrides={"T": 4, "d": [1, 2]})
    first = run_check("X1", config)  # two d-cells: fewer than a seed needs to be judged
    assert first.verdict == "mixed" and first.per_seed[0]["setting"]["cached cells"] == 0
    assert first.reason.startswith("not judged at any of 1 seeds") and "d-cells accepted" in first.reason
    again = run_check("X1", config)
    assert again.per_seed[0]["setting"]["cached cells"] == 2
    assert again.per_seed[0]["figures"]["per d"] == first.per_seed[0]["figures"]["per d"]
    assert Path(again.per_seed[0]["figures"]["figure"]).is_file()


def _x3_config(tmp_path, **overrides):
    return CheckConfig(scale="quick", out_dir=str(tmp_path), seeds=1, overrides=overrides)


def test_x3_reads_its_grid_from_the_store_on_a_rerun(tmp_path):
    small = {"xi": [1e-10, 1e-2], "rank_tol": [1e-8], "size": (3, 6, 3)}
    first = run_check("X3", _x3_config(tmp_path, **small))
    assert first.verdict == "holds", first.reason
    assert [g["outcome"] for g in first.per_seed[0]["figures"]["grid"]] == ["learned", "RankExceededError"]
    again = run_check("X3", _x3_config(tmp_path, **small))
    assert again.per_seed[0]["setting"]["cached cells"] == 2 and again.figures == first.figures


def test_x3_fails_when_a_learner_returns_a_wrong_dimension_silently(tmp_path, monkeypatch):
    """Mutation: a learner that answers every cell with a larger model and no warning must turn X3 to 'fails'."""
    from logitrank.verify.experiments.sweep import TASKS

    monkeypatch.setitem(TASKS, "learn", lambda config, seed: {"tv": 0.0, "dim": config["d"] + 1, "rank_margin": 1e9})
    result = run_check("X3", _x3_config(tmp_path, xi=[1e-10], rank_tol=[1e-8], size=(2, 4, 2)))
    assert result.verdict == "fails" and "silently" in result.reason


def test_t8_query_scaling_runs_on_the_engine_and_rereads_the_store(tmp_path):
    from logitrank.verify.claims.checks import _learner_claims as lc
    from logitrank.verify.experiments.sweep import load

    config = CheckConfig(out_dir=str(tmp_path), overrides={
        "scaling_d": [1, 2], "scaling_d_at_VT": (2, 4), "scaling_V": [2, 3], "scaling_V_at_dT": (1, 4),
        "scaling_T": [3, 4], "scaling_T_at_Vd": (2, 1)})
    first = lc._query_scaling(config, 0.1)
    assert set(first) == {"d", "V", "T"} and all(len(q) == 2 and min(q) > 0 for _, q, _ in first.values())
    assert len(load(tmp_path / "logitrank.sqlite", "T8-scaling-quick")) == 4  # (2,4,1) is shared by all three lines
    assert lc._query_scaling(config, 0.1) == first
