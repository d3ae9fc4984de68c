"""``logitrank report --sweep NAME`` (issue 24): a sweep's table and default figure beside the claims report."""

import json

import pytest

from logitrank.verify.cli import main
from logitrank.verify.experiments.sweep import SweepSpec, run_sweep


def test_report_writes_a_sweep_section(tmp_path, capsys):
    results = tmp_path / "checks.json"
    assert main(["check", "T3", "--json", str(results)]) == 0
    spec = SweepSpec(name="g", task="learn", seeds=2, grid={"V": [2, 3], "d": [1, 2]},
                     fixed={"family": "random_isan", "T": 3, "learner": "exact"})
    run_sweep(spec, store=tmp_path / "logitrank.sqlite")
    capsys.readouterr()
    assert main(["report", "--results", str(results), "--sweep", "g"]) == 0
    md = (tmp_path / "sweeps" / "g.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| "))
    assert md.startswith("# sweep g: 4 cells, 8 rows done, 0 failed")
    # issue 35: the grid keys lead every page; columns equal in every row (2 seeds, T = 3) fold into a header line
    assert [c.strip() for c in header.strip("|").split("|")][:2] == ["V", "d"]
    assert "same in every row: T=3" in md and "seeds=2" in md
    tables = md.split("\n\n")
    pages = [t for t in tables if t.startswith("| ")]
    assert pages and all(len(t.splitlines()) == 2 + 4 for t in pages)  # header, rule, a row per cell
    page = (tmp_path / "sweeps" / "g.html").read_text()
    assert "data:image/png;base64," in page and "<table" in page
    assert json.loads(results.read_text())  # the claims report is still written


def test_an_unknown_sweep_is_a_usage_error(tmp_path, capsys):
    results = tmp_path / "checks.json"
    assert main(["check", "T3", "--json", str(results)]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["report", "--results", str(results), "--sweep", "nope"])
    assert exc.value.code == 2 and "--sweep 'nope'" in capsys.readouterr().err
