"""Issue 24: the report shows every figure of every claim that ran (E1–E12 included, found beside the
results by name), legible at page width, and report.md and report.html list the same claims."""

import json
import re

from logitrank.verify.claims import _report
from logitrank.verify.cli import main
from logitrank.verify.figures._common import plot_kl_to_rank, plot_singular_values


def _results(tmp_path):
    """Results as `logitrank check` leaves them: E1 and E3 draw figures without naming them in the result,
    T7 names its figure by an absolute path from another machine (the results were moved), E12 draws none."""
    seed0 = tmp_path / "figures" / "tiny" / "quick" / "seed0"
    plot_singular_values({1: [1.0, 0.5, 0.3, 0.2, 0.1]}, seed0, name="E1_singular_values")
    plot_kl_to_rank([1, 2, 4], {"a": [0.3, 0.1, 0.02]}, seed0, name="E3_kl_to_rank")
    plot_kl_to_rank([1, 2], {"b": [0.2, 0.1]}, seed0, name="T7_parity_contrast")
    plot_kl_to_rank([1, 2], {"c": [0.2, 0.1]}, seed0, name="E12x_not_E12")  # another claim's prefix: not E1's or E12's
    run = {"scale": "quick", "seed": 0, "model": "tiny"}
    rows = [
        {"id": "T7", "verdict": "holds", **run, "figures": {"figure": "/elsewhere/figures/tiny/quick/seed0/T7_parity_contrast.png"}},
        {"id": "E1", "verdict": "fails", **run, "figures": {"α": 0.59}, "per_seed": [{"figures": {}}]},
        {"id": "E3", "verdict": "holds", **run, "figures": {"slope (full)": -0.6}},
        {"id": "E12", "verdict": "holds", **run, "figures": {"α Gaussian": 0.01}},
    ]
    (tmp_path / "checks.json").write_text(json.dumps(rows))
    return tmp_path / "checks.json"


def test_every_figure_is_found_and_both_files_list_the_same_claims(tmp_path):
    results = _results(tmp_path)
    assert main(["report", "--results", str(results)]) == 0
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    claims_md = re.findall(r"^### (\w+) —", md, re.MULTILINE)
    claims_html = re.findall(r"<h3 id='(\w+)'>", page)
    assert claims_md == claims_html == ["T7", "E1", "E3", "E12"]
    summary_md = re.findall(r"^\| (\w+) \|", md.split("## Claims")[0], re.MULTILINE)[1:]  # the header row is "| ID |"
    summary_html = re.findall(r"<tr><td><a href='#(\w+)'>", page)
    assert summary_md == summary_html == claims_md
    assert "Not in these results: T1, T2" in md and "Not in these results: T1, T2" in page
    assert re.findall(r"!\[(\w+): (\w+)\]\((\S+)\)", md) == [
        ("T7", "T7_parity_contrast", "figures/tiny/quick/seed0/T7_parity_contrast.png"),
        ("E1", "E1_singular_values", "figures/tiny/quick/seed0/E1_singular_values.png"),
        ("E3", "E3_kl_to_rank", "figures/tiny/quick/seed0/E3_kl_to_rank.png")]
    assert page.count("data:image/png;base64,") == 3 and "missing" not in page


def test_figures_are_shown_at_a_legible_size(tmp_path):
    """Every figure is drawn at paper size (3.4 or 7 in); at 150 CSS px per inch its 8-pt text shows at about
    17 px, and a two-column figure shrunk to the 60rem page keeps it above 14 px."""
    results = _results(tmp_path)
    _report.write_report(results)
    page = (tmp_path / "report.html").read_text()
    widths = [int(w) for w in re.findall(r"style='width:(\d+)px;max-width:100%", page)]
    assert len(widths) == 3 and all(400 <= w <= 1100 for w in widths)


def test_missing_figures_are_named_not_dropped(tmp_path):
    rows = [{"id": "T8", "verdict": "holds", "figures": {"figure": str(tmp_path / "gone" / "T8_query_scaling.png")}}]
    md = _report.render_markdown(rows, {})
    assert "*figure" in md and "T8_query_scaling.png is missing*" in md
    assert "T8_query_scaling.png is missing" in _report.render_html(rows, {})
