"""The logitrank CLI: exit codes, JSON results, the registry."""

import json

import pytest

from logitrank.verify import LEDGER, CheckConfig, ClaimResult, registered, run_check
from logitrank.verify.cli import main


def test_T1_T3_hold_and_json_is_written(tmp_path, capsys):
    path = tmp_path / "out.json"
    assert main(["check", "T1", "T3", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert [r["id"] for r in rows] == ["T1", "T3"]
    for r in rows:
        assert r["verdict"] == "holds"
        assert {"id", "verdict", "setting", "figures", "seed", "scale", "version"} <= set(r)
    assert rows[1]["figures"]["max TV"] <= rows[1]["figures"]["tolerance"]
    assert "T1    holds" in capsys.readouterr().out


def test_unimplemented_claim_is_not_run_and_exit_1(tmp_path):
    missing = next(c for c in LEDGER if c not in registered())
    path = tmp_path / "out.json"
    assert main(["check", missing, "--json", str(path)]) == 1
    (row,) = json.loads(path.read_text())
    assert row["verdict"] == "not-run" and row["reason"]


@pytest.mark.parametrize("argv", [["check", "Z9"], ["check", "--scale", "huge"], ["check", "--seed", "-1"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_list_shows_every_claim(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(cid in out for cid in LEDGER)


def test_registry_contract():
    assert {"T1", "T3"} <= set(registered())
    result = run_check("T3", CheckConfig(seed=1))
    assert result.verdict == "holds" and result.setting["seed"] == 1
    with pytest.raises(ValueError, match="verdict must be"):
        ClaimResult("T1", "maybe")
    with pytest.raises(ValueError, match=r"scale must be one of \('quick', 'full'\); got 'huge'"):
        CheckConfig(scale="huge")
    with pytest.raises(KeyError, match="unknown claim id 'Q'"):
        run_check("Q")


def test_learner_figures_render(tmp_path):
    from logitrank.verify._learner_figures import plot_query_scaling, plot_tv_curves

    png, pdf = plot_tv_curves({"a": ([1, 2], [0.1, 1e-20])}, tmp_path, name="tv", xlabel="n", reference=0.4)
    assert png.stat().st_size > 1000 and pdf.exists()
    png, pdf = plot_query_scaling({"d": ([1, 2, 4], [10, 40, 160], 2.0)}, tmp_path, name="q")
    assert png.stat().st_size > 1000 and pdf.exists()
