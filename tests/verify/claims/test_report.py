"""The claims report and the README's generated claims table."""

import json
from pathlib import Path

import numpy as np
import pytest

from logitrank.verify.claims import _report
from logitrank.verify.cli import main
from logitrank.verify.figures._common import plot_kl_to_rank

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "reference" / "quick" / "checks.json"


def _rows(tmp_path):
    png, _ = plot_kl_to_rank([1, 2, 4], {"a": [0.3, 0.1, 0.02]}, tmp_path / "figs")
    seeded = {"id": "E3", "verdict": "mixed", "figures": {"slope": -0.6, "figure": str(png)}, "headline": "slope",
              "spread": {"slope": [-0.7, -0.5]}, "per_seed": [{"figures": {"figure": str(png)}}] * 3,
              "rule": "holds in every seed", "reason": "2 of 3 seeds hold (seed 1: slope too flat)",
              "setting": {"n": 40, "traceback": "hidden"}, "seconds": 1.5}
    return [seeded, {"id": "T3", "verdict": "holds", "figures": {"max TV": 2e-16}, "seconds": 0.1}]


def test_table_has_every_ledger_claim_with_median_spread_and_paper(tmp_path):
    table = _report.claims_table(_rows(tmp_path))
    lines = table.strip().splitlines()
    assert len(lines) == 2 + len(_report.LEDGER)
    e3 = next(line for line in lines if line.startswith("| E3 |"))
    assert "**mixed**" in e3 and "slope = -0.6 [-0.7, -0.5] over 3 seeds" in e3 and "2 of 3 seeds hold" in e3
    assert _report.PAPER_FIGURES["E3"] in e3
    assert "| T1 |" in table and "not run" in next(line for line in lines if line.startswith("| T1 |"))


def test_report_files_are_self_contained(tmp_path):
    results = tmp_path / "checks.json"
    results.write_text(json.dumps(_rows(tmp_path)))
    md, page = _report.write_report(results)
    text, html = md.read_text(), page.read_text()
    assert "### E3" in text and "rule: holds in every seed" in text and "hidden" not in text
    assert html.count("data:image/png;base64,") == 1 and "src='http" not in html and "src='figs" not in html


def test_readme_update_and_check(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{_report.README_BEGIN}\nold\n{_report.README_END}\noutro\n")
    rows = _rows(tmp_path)
    assert _report.update_readme(readme, rows, check=True) is True and "old" in readme.read_text()
    assert _report.update_readme(readme, rows) is True
    assert _report.update_readme(readme, rows, check=True) is False
    assert readme.read_text().startswith("intro\n") and readme.read_text().endswith("outro\n")
    with pytest.raises(ValueError, match="has no generated claims table"):
        _report.update_readme(tmp_path / "x.md" if (tmp_path / "x.md").write_text("no markers") else None, rows)


def test_cli_report_and_usage_errors(tmp_path, capsys):
    results = tmp_path / "checks.json"
    results.write_text(json.dumps(_rows(tmp_path)))
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").is_file()
    for argv, match in [(["report", "--results", str(tmp_path / "none.json")], "is not a file"),
                        (["report", "--results", str(results), "--check-readme"], "needs --readme")]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and match in capsys.readouterr().err
    results.write_text("{broken")
    with pytest.raises(SystemExit):
        main(["report", "--results", str(results)])
    assert "not valid JSON" in capsys.readouterr().err


def test_headline_formats_numbers():
    assert _report.headline({"figures": {"x": np.float64(0.000123)}, "headline": "x"}) == "x = 1.23e-04"
    assert _report.headline({"figures": {}}) == "—"


def test_readme_table_matches_the_reference_results():
    """The README's claims table is exactly what `logitrank report --readme` makes of the reference run."""
    rows, _ = _report.load_results(REFERENCE)
    assert not _report.update_readme(ROOT / "README.md", rows, check=True), (
        "README's claims table is stale: run `logitrank report --results reference/quick/checks.json --readme README.md`")


def test_atomic_writes_keep_the_file_mode_and_follow_the_umask(tmp_path):
    import os

    from logitrank._io import atomic_write_text

    old = os.umask(0o022)
    try:
        fresh = tmp_path / "new.txt"
        atomic_write_text(fresh, "a")
        assert fresh.stat().st_mode & 0o777 == 0o644  # not the 0600 of a bare temporary file
        kept = tmp_path / "kept.txt"
        kept.write_text("x")
        kept.chmod(0o640)
        atomic_write_text(kept, "b")
        assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "b"
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    finally:
        os.umask(old)


def test_run_record_header_carries_versions(tmp_path):
    rows = [{"id": "T3", "verdict": "holds", "figures": {}, "scale": "quick", "model": "tiny", "git_sha": "abc",
             "torch": "2.13.0", "transformers": "5.24.0", "python": "3.11.7"}]
    (tmp_path / "r.json").write_text(json.dumps(rows))
    _, run = _report.load_results(tmp_path / "r.json")
    assert run == {"scale": "quick", "model": "tiny", "git_sha": "abc", "python": "3.11.7", "torch": "2.13.0",
                   "transformers": "5.24.0"}
    assert "- torch: 2.13.0" in _report.render_markdown(*_report.load_results(tmp_path / "r.json"))
