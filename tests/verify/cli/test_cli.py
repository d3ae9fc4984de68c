"""The logitrank CLI: exit codes, JSON results, the registry."""

import json
import re

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


@pytest.fixture
def not_run_claim():
    from logitrank.verify import register
    from logitrank.verify.claims._registry import unregister

    @register("NR1", statement="needs an optional piece that is missing")
    def needs_missing_piece(config):
        return ClaimResult("NR1", "not-run", reason="optional piece missing")

    yield "NR1"
    unregister("NR1")


def test_completed_run_exits_0_and_strict_exits_1_unless_all_hold(tmp_path, capsys, not_run_claim):
    path = tmp_path / "out.json"
    assert main(["check", not_run_claim, "--json", str(path)]) == 0  # a completed run is a success (make demo)
    (row,) = json.loads(path.read_text())
    assert row["verdict"] == "not-run" and row["reason"] == "optional piece missing"
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == f"results written to {path}"
    assert main(["check", not_run_claim, "--strict", "--json", str(path)]) == 1
    assert main(["check", "T3", "--strict", "--json", str(path)]) == 0


@pytest.mark.parametrize("argv", [["check", "Z9"], ["check", "--scale", "huge"], ["check", "--seed", "-1"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


USAGE = [
    (["--json", "{file}/x.json"], r"--json .* lies under .*, which is a file, not a folder"),
    (["--json", "{dir}"], r"--json must name a file, not the folder"),
    (["--json", ""], r"--json must name a file; got an empty path"),
    (["--store", "{dir}"], r"--store must name a file, not the folder"),
    (["--store", "{file}"], r"--store .* cannot be used: .*not a usable SQLite database"),
    (["--threads", "100000"], r"--threads must be an integer in \[1, \d+\]; got 100000"),
    (["--threads", "0"], r"--threads must be an integer in \[1, \d+\]; got 0"),
    (["--seed", str(2**64)], r"--seed must be an integer in \[0, 9223372036854775743\]; got 18446744073709551616"),
    (["--seed", "1.5"], r"--seed must be an integer in .*; got '1.5'"),
    (["--seeds", "0"], r"--seeds must be an integer in \[1, 64\]; got 0"),
    (["--seeds", "65"], r"--seeds must be an integer in \[1, 64\]; got 65"),
    (["--model", "doesnotexist"], r"--model 'doesnotexist' is not tiny, .* local cache \(logitrank never downloads\)"),
    (["--model", ""], r"--model must be a model name; got an empty string"),
    (["--model", "tiny@step7"], r"--model tiny@step7: tiny has no checkpoint at step 7"),
    (["--model", "{dir}"], r"--model .* is not a model folder \(no config.json in it\)"),
    (["--plugin", "no_such_module_xyz"], r"plugin 'no_such_module_xyz' could not be loaded: ModuleNotFoundError"),
    (["--plugin", "{dir}/missing.py"], r"plugin file .*missing.py' does not exist"),
]


@pytest.mark.parametrize(("extra", "match"), USAGE)
def test_bad_options_are_usage_errors_before_any_work(extra, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a database")
    (tmp_path / "adir").mkdir()
    extra = [a.format(file=tmp_path / "afile", dir=tmp_path / "adir") for a in extra]
    argv = ["check", "T3", *extra] if "--json" in extra else ["check", "T3", "--json", str(tmp_path / "r" / "c.json"), *extra]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert re.search(match, err[-1]), err[-1]
    assert not (tmp_path / "r").exists() and not (tmp_path / "results").exists()  # nothing ran, nothing written


def test_runs_keep_history_and_records(tmp_path, capsys):
    path = tmp_path / "out.json"
    assert main(["check", "T3", "--json", str(path)]) == 0
    assert main(["check", "T10", "--json", str(path), "--seed", "2"]) == 0
    rows = json.loads(path.read_text())
    assert [(r["id"], r["seed"], r["run_id"]) for r in rows] == [("T3", 0, 1), ("T10", 2, 2)]
    assert all(r["torch"].startswith("2.") and r["python"].startswith("3.") for r in rows)  # the report's header
    from logitrank.verify.claims._claim_store import ClaimStore

    runs = ClaimStore(str(tmp_path / "logitrank.sqlite")).runs()
    assert [r["claims"] for r in runs] == [["T3"], ["T10"]]
    assert all(r["status"] == "completed" and r["wall_s"] > 0 for r in runs)
    assert runs[1]["config"] == {"scale": "quick", "seed": 2, "seeds": 3, "model": "tiny", "out_dir": str(tmp_path)}
    assert set(runs[0]["provenance"]) == {"logitrank", "git_sha", "python", "numpy", "torch", "transformers"}
    assert runs[0]["provenance"]["torch"].startswith("2.") and set(runs[0]["seconds"]) == {"T3"}


def test_resume_skips_finished_claims_with_the_same_settings(tmp_path, capsys, monkeypatch):
    path = tmp_path / "out.json"
    assert main(["check", "T3", "T10", "--json", str(path)]) == 0
    first = json.loads(path.read_text())
    from logitrank.verify.cli import check as _check_cli

    ran = []
    real = _check_cli.run_check
    monkeypatch.setattr(_check_cli, "run_check", lambda cid, cfg, **kw: ran.append(cid) or real(cid, cfg, **kw))
    capsys.readouterr()
    assert main(["check", "T3", "T10", "T4", "--resume", "--json", str(path)]) == 0
    assert ran == ["T4"]
    assert "T3    holds      run 1" in capsys.readouterr().out
    again = {r["id"]: r for r in json.loads(path.read_text())}
    # exact: the reused figures are the stored ones, read back
    assert again["T3"]["figures"] == first[0]["figures"] and again["T3"]["reused_from"] == 1
    assert main(["check", "T3", "--resume", "--seed", "5", "--json", str(path)]) == 0  # other settings: runs again
    assert ran == ["T4", "T3"]


def test_user_claim_by_plugin_file_and_error_distinct_from_not_run(tmp_path, capsys):
    from logitrank.verify.claims._registry import unregister

    plugin = tmp_path / "my_claims.py"
    plugin.write_text(
        "from logitrank.verify import ClaimResult, register\n"
        "@register('MINE1', statement='one is odd', source='me', rule='holds when 1 % 2 == 1')\n"
        "def mine(config):\n"
        "    return ClaimResult('MINE1', 'holds' if 1 % 2 == 1 else 'fails', figures={'one': 1})\n"
        "@register('MINE2', statement='this check raises')\n"
        "def boom(config):\n"
        "    raise RuntimeError('kaboom')\n")
    path = tmp_path / "out.json"
    try:
        assert main(["check", "MINE1", "MINE2", "--plugin", str(plugin), "--json", str(path)]) == 0
        rows = {r["id"]: r for r in json.loads(path.read_text())}
        assert rows["MINE1"]["verdict"] == "holds" and rows["MINE1"]["rule"] == "holds when 1 % 2 == 1"
        assert rows["MINE2"]["verdict"] == "error" and rows["MINE2"]["reason"] == "check raised RuntimeError: kaboom"
        assert LEDGER["MINE1"].source == "me"
    finally:
        unregister("MINE1")
        unregister("MINE2")
    assert "MINE1" not in LEDGER and "MINE1" not in registered()


def test_user_claim_from_an_entry_point(tmp_path, monkeypatch):
    import importlib.metadata
    import sys

    from logitrank.verify.claims import _registry

    (tmp_path / "ep_claims_mod.py").write_text(
        "from logitrank.verify import ClaimResult, register\n"
        "@register('EP1', statement='entry points load')\n"
        "def ep(config):\n"
        "    return ClaimResult('EP1', 'holds')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint("mine", "ep_claims_mod", _registry.ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [ep] if kw.get("group") == _registry.ENTRY_POINT_GROUP else real(**kw))
    monkeypatch.setattr(_registry, "_ENTRY_POINTS_LOADED", False)
    try:
        assert "EP1" in registered() and run_check("EP1").verdict == "holds"
    finally:
        _registry.unregister("EP1")
        sys.modules.pop("ep_claims_mod", None)


def test_register_refuses_bad_user_claims():
    from logitrank.verify import register

    with pytest.raises(ValueError, match=r"unknown claim id 'ZZ9'.*pass statement="):
        register("ZZ9")
    with pytest.raises(ValueError, match=r"claim_id must be a str of letters"):
        register("9 bad", statement="x")
    with pytest.raises(ValueError, match=r"claim T1 is a built-in ledger claim"):
        register("T1", statement="something else")
    with pytest.raises(ValueError, match=r"statement must be a non-empty str; got ' '"):
        register("ZZ9", statement=" ")


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
    from logitrank.verify.figures._learner import plot_query_scaling, plot_tv_curves

    png, pdf = plot_tv_curves({"a": ([1, 2], [0.1, 1e-20])}, tmp_path, name="tv", xlabel="n", reference=0.4)
    assert png.stat().st_size > 1000 and pdf.exists()
    png, pdf = plot_query_scaling({"d": ([1, 2, 4], [10, 40, 160], 2.0)}, tmp_path, name="q")
    assert png.stat().st_size > 1000 and pdf.exists()


def test_figures_carry_the_run_identity(tmp_path):
    path = tmp_path / "out.json"
    assert main(["check", "T11", "--seed", "3", "--json", str(path)]) == 0
    figures = [p.relative_to(tmp_path) for p in tmp_path.rglob("*.png")]
    assert figures and all(p.parts[:4] == ("figures", "tiny", "quick", "seed3") for p in figures), figures
    assert not list(tmp_path.rglob("*.tmp"))


def test_runs_lists_the_run_records(tmp_path, capsys):
    path = tmp_path / "out.json"
    assert main(["check", "T3", "--json", str(path)]) == 0
    assert main(["check", "T3", "--resume", "--seed", "4", "--json", str(path)]) == 0
    capsys.readouterr()
    assert main(["runs", "--store", str(tmp_path / "logitrank.sqlite")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "completed" in lines[1] and lines[1].endswith("T3:holds")
    assert lines[2].split()[4] == "4"  # the second run's seed
    with pytest.raises(SystemExit) as info:
        main(["runs", "--store", str(tmp_path / "none.sqlite")])
    assert info.value.code == 2


def test_a_seeded_claim_interrupted_between_seeds_resumes_from_its_next_seed(tmp_path, capsys):
    from logitrank.verify import register
    from logitrank.verify.claims._registry import unregister

    calls, interrupt_at = [], {"seed": 1}

    @register("SEEDY", seeded=True, statement="a slow seeded claim")
    def seedy(config):
        if config.seed == interrupt_at["seed"]:
            interrupt_at["seed"] = None
            raise KeyboardInterrupt  # as if the run were stopped inside this seed
        calls.append(config.seed)
        return ClaimResult("SEEDY", "holds", figures={"x": float(config.seed) ** 2}, headline="x")

    try:
        path = tmp_path / "out.json"
        assert main(["check", "SEEDY", "--seeds", "3", "--json", str(path)]) == 130
        assert calls == [0]
        assert main(["check", "SEEDY", "--seeds", "3", "--resume", "--json", str(path)]) == 0
        assert calls == [0, 1, 2]  # seed 0 was not run again
        (row,) = json.loads(path.read_text())
        # exact: median and range of the small integers seed² (0, 1, 4), read back from JSON
        assert row["verdict"] == "holds" and row["figures"]["x"] == 1.0 and row["spread"]["x"] == [0.0, 4.0]
        assert [r["setting"]["seed"] for r in row["per_seed"]] == [0, 1, 2]
        assert main(["check", "SEEDY", "--seeds", "3", "--json", str(tmp_path / "fresh.json")]) == 0
        fresh = json.loads((tmp_path / "fresh.json").read_text())[0]
        def same(rows):
            return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

        assert same(fresh["per_seed"]) == same(row["per_seed"]) and fresh["figures"] == row["figures"]
    finally:
        unregister("SEEDY")


def test_terminal_table_shows_the_reports_headline():
    """The check table's figure cell is the report's headline (median [min, max] over seeds), shortened."""
    from logitrank.verify import ClaimResult
    from logitrank.verify.cli.check import _headline

    seeded = ClaimResult("E9", "mixed", figures={"kl": 0.02, "n": 3}, headline="kl",
                         spread={"kl": [0.01, 0.03]}, per_seed=[{}, {}, {}])
    assert _headline(seeded) == "kl = 0.02 [0.01, 0.03] over 3 seeds"
    bare = ClaimResult("T9", "error", reason="ValueError: boom\ntraceback")
    assert _headline(bare) == "ValueError: boom"
    assert len(_headline(seeded, width=12)) == 12 and _headline(seeded, width=12).endswith("…")


def test_every_command_is_one_module_with_the_same_two_functions():
    """Issue 30: one module per command, each with add_parser(sub) and run(args); errors go one way."""
    import importlib
    import inspect

    from logitrank.verify import cli

    for command, module_name in cli.COMMANDS.items():
        module = importlib.import_module(f"logitrank.verify.cli.{module_name}")
        assert len(inspect.signature(module.add_parser).parameters) == 1, command
        assert len(inspect.signature(module.run).parameters) == 1, command


def test_a_command_usage_error_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--model", "isan:3,4,2", "--port", "-1"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == "logitrank serve: error: --port must be >= 0; got -1"
