"""``logitrank check --set / --show-config`` (issue 22): overrides validated with one line, resolved config printed
and stored with the result, --resume matching the resolved config."""

import json

import pytest

from logitrank.verify.cli import main


def test_show_config_prints_the_resolved_presets(capsys):
    assert main(["check", "T3", "--show-config", "--set", "draws=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("T3 (quick, with --set):") and "  draws = 1" in out and "  sizes = " in out


def test_an_unknown_setting_is_a_usage_error_naming_the_nearest(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "T3", "--set", "draw=1"])
    assert exc.value.code == 2
    assert "claim T3: unknown setting 'draw' for this experiment (did you mean 'draws'?)" in capsys.readouterr().err


def test_a_malformed_set_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "T3", "--set", "draws"])
    assert exc.value.code == 2 and "--set expects KEY=VALUE; got 'draws'" in capsys.readouterr().err


def test_the_override_runs_is_stored_and_resume_matches_it(tmp_path, capsys):
    out = tmp_path / "r" / "checks.json"
    args = ["check", "T3", "--json", str(out), "--set", "draws=1", "--set", "sizes=[[2, 4, 2]]"]
    assert main(args) == 0
    (row,) = [r for r in json.loads(out.read_text()) if r["id"] == "T3"]
    assert row["config"]["overrides"] == {"draws": 1, "sizes": [[2, 4, 2]]}
    assert row["config"]["resolved"]["sizes"] == [[2, 4, 2]]
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0  # same resolved config: reused
    assert "reused by --resume" in capsys.readouterr().out
    assert main(["check", "T3", "--json", str(out), "--set", "draws=2", "--set", "sizes=[[2, 4, 2]]", "--resume"]) == 0
    assert "reused by --resume" not in capsys.readouterr().out  # another config: run again
