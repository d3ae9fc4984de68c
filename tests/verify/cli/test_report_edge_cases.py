"""Issue 34, two report cases: a JSON object without 'results' is refused (it wrote an empty report and
exited 0), and a one-cell sweep gets its table without a figure (it asked for an option `report` lacks)."""

import json

import pytest

from logitrank.verify.cli import main
from logitrank.verify.experiments import SweepSpec, run_sweep, write_sweep_report


def test_a_results_object_without_results_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "checks.json"
    bad.write_text(json.dumps({"run": {}, "rows": []}))
    with pytest.raises(SystemExit) as stop:
        main(["report", "--results", str(bad)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "JSON object without 'results' (keys: run, rows)" in err
    assert not (tmp_path / "report.md").exists()


def test_a_one_cell_sweep_reports_its_table_without_a_figure(tmp_path):
    store = tmp_path / "s.sqlite"
    run_sweep(SweepSpec(name="one", task="noop", grid={"d": [2]}, seeds=1), store=store)
    md, page = write_sweep_report(store, "one", tmp_path)
    text = md.read_text()
    assert "no figure: the sweep varies no parameter (one cell)" in text and "seed_mod" in text
    assert "<img" not in page.read_text()
