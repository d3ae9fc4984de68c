"""Issue 35, items 1 and 6: a report whose figures match its verdicts, and plugin claims as full as built-ins.

A seeded claim shows every seed's figure, labelled by seed, beside the verdict pooled over the seeds; no
figure is embedded twice; paths are shown relative to the results; the summary counts the verdicts and
gives each reason; a run on the tiny model says how far below the papers' scale it is; a committed
reference must come from a clean commit; ``report --plugin`` and ``list --plugin`` show a plugin's claims.
"""

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from logitrank.verify.claims import LEDGER, _report
from logitrank.verify.cli import main
from logitrank.verify.figures._common import plot_kl_to_rank

ROOT = Path(__file__).resolve().parents[3]


def _seeded_results(tmp_path, *, model="tiny"):
    """B2 over seeds 0-2 (each seed's figure in its own folder, named by an absolute path of the machine that ran,
    the results since moved here) and T8 (figure named and also found by name: the same file twice)."""
    scratch = tmp_path / "scratch"
    for seed in range(3):
        plot_kl_to_rank([1, 2, 4], {"a": [0.3, 0.1 * (seed + 1), 0.02]}, scratch / "figures" / model / "quick" /
                        f"seed{seed}", name="B2_witnesses")
    plot_kl_to_rank([1, 2], {"b": [0.2, 0.1]}, scratch / "figures" / model / "quick" / "seed0", name="T8_query_scaling")
    results = tmp_path / "results"
    shutil.copytree(scratch, results)  # the run happened in scratch/, its results were copied here
    shutil.rmtree(scratch / "figures" / model / "quick" / "seed2")  # one named file no longer exists there
    run = {"scale": "quick", "seed": 0, "model": model, "git_sha": "abc123"}
    per_seed = [{"id": "B2", "verdict": v, "figures": {"ratio": r, "figure": str(scratch / "figures" / model / "quick" /
                                                                             f"seed{s}" / "B2_witnesses.png")},
                 "setting": {"seed": s}, "reason": "" if v == "holds" else f"seed {s}: ratio {r} too high"}
                for s, (v, r) in enumerate([("holds", 0.16), ("fails", 0.9), ("holds", 0.2)])]
    rows = [
        {"id": "T8", "verdict": "holds", **run, "figures": {"figure": str(scratch / "figures" / model / "quick" /
                                                                             "seed0" / "T8_query_scaling.png")},
         "setting": {"store": str(scratch / "logitrank.sqlite"), "cache": "/var/tmp/xyz/cache/chunk.pt"}},
        {"id": "B2", "verdict": "mixed", **run, "figures": {"ratio": 0.2}, "spread": {"ratio": [0.16, 0.9]},
         "headline": "ratio", "per_seed": per_seed, "reason": "2 of 3 seeds hold (seed 1: ratio 0.9 too high)",
         "rule": "holds if every seed holds"},
    ]
    (results / "checks.json").write_text(json.dumps(rows))
    return results / "checks.json"


def test_every_seed_is_shown_once_and_labelled(tmp_path):
    results = _seeded_results(tmp_path)
    assert main(["report", "--results", str(results)]) == 0
    md = (results.parent / "report.md").read_text()
    page = (results.parent / "report.html").read_text()
    b2 = md.split("### B2")[1]
    links = re.findall(r"!\[B2: B2_witnesses\]\((\S+)\) \((seed \d)\)", b2)
    assert links == [(f"figures/tiny/quick/seed{s}/B2_witnesses.png", f"seed {s}") for s in range(3)]
    assert "the verdict pools the seeds: ratio = 0.2 [0.16, 0.9] over 3 seeds" in b2
    assert page.count("data:image/png;base64,") == 4  # 3 seeds of B2 and T8 once, though T8 is named and found
    for s in range(3):
        assert f"seed {s} — figures/tiny/quick/seed{s}/B2_witnesses.png" in page


def test_paths_are_relative_to_the_results_and_no_scratch_path_shows(tmp_path):
    results = _seeded_results(tmp_path)
    main(["report", "--results", str(results)])
    for name in ("report.md", "report.html"):
        text = (results.parent / name).read_text()
        assert str(tmp_path) not in text and "/var/tmp/xyz" not in text
    md = (results.parent / "report.md").read_text()
    assert "store: logitrank.sqlite" in md and "cache: …/chunk.pt" in md


def test_summary_has_totals_a_reason_column_and_the_scale_banner(tmp_path):
    results = _seeded_results(tmp_path)
    main(["report", "--results", str(results)])
    md = (results.parent / "report.md").read_text()
    page = html.unescape((results.parent / "report.html").read_text())
    not_judged = len(LEDGER) - 2
    totals = f"2 results: 1 holds, 0 fails, 1 mixed, 0 not run, 0 error; {not_judged} ledger claims not judged"
    assert totals in md and totals in page
    header = next(line for line in md.splitlines() if line.startswith("| ID |"))
    assert header.endswith("| reason |")
    b2_row = next(line for line in md.splitlines() if line.startswith("| B2 |"))
    assert b2_row.endswith("| 2 of 3 seeds hold (seed 1: ratio 0.9 too high) |")
    assert "<th>reason</th>" in page and "2 of 3 seeds hold (seed 1: ratio 0.9 too high)</td>" in page
    banner = "the default model is a 2-layer toy far below the papers' scale"
    assert banner in md and banner in page
    other = _seeded_results(tmp_path / "other", model="smollm2")
    main(["report", "--results", str(other)])
    assert banner not in (other.parent / "report.md").read_text()


def test_dirty_provenance_is_found():
    rows = [{"id": "T1", "verdict": "holds", "git_sha": "abc"},
            {"id": "E1", "verdict": "holds", "git_sha": "abc+dirty", "per_seed": [{"git_sha": "abc+dirty"}]}]
    assert _report.dirty_provenance(rows, {"git_sha": "abc"}) == ["E1: abc+dirty", "E1 seed 0: abc+dirty"]
    assert _report.dirty_provenance(rows[:1], {"git_sha": "def+dirty"}) == ["run: def+dirty"]
    assert _report.dirty_provenance([{"id": "T1", "git_sha": "abc"}]) == []
    md = _report.render_markdown(rows, {"git_sha": "abc+dirty"})
    assert "warning: computed from a working tree with uncommitted changes (git SHA abc+dirty)" in md


#: references computed from a dirty tree when this test was written (issue 35), to be regenerated from a clean
#: commit and then dropped from this set; the test below fails on any other reference computed from a dirty tree
#: references known to come from an uncommitted tree, each to be regenerated from a clean commit (the list
#: only shrinks: an entry that is clean now fails the test below, so it is removed when regenerated).
#: SmolLM2's N = 32 ledger (b0abd98, about 70 minutes); the X6 runs on SmolLM2 and Gemma-3 (made while the
#: X6 check itself was still uncommitted; committed unchanged in 7f696b2).
KNOWN_DIRTY = {"results-reference/smollm2/checks.json",
               "results-reference/smollm2/width-claim/checks.json", "results-reference/gemma3/width-claim/checks.json"}


def test_no_committed_reference_comes_from_a_dirty_tree():
    committed = [ROOT / "reference" / "quick" / "checks.json", *sorted((ROOT / "results-reference").rglob("checks.json"))]
    dirty = set()
    for path in committed:
        rows, run = _report.load_results(path)
        if _report.dirty_provenance(rows, run):
            dirty.add(path.relative_to(ROOT).as_posix())
    assert dirty <= KNOWN_DIRTY, (f"reference(s) computed from a working tree with uncommitted changes (git SHA "
                                  f"…+dirty): {sorted(dirty - KNOWN_DIRTY)}; regenerate them from a clean commit")
    assert KNOWN_DIRTY <= dirty, f"regenerated from a clean commit, drop them from KNOWN_DIRTY: {sorted(KNOWN_DIRTY - dirty)}"


PLUGIN = '''
from logitrank.verify import ClaimResult, Presets, register
from logitrank.verify.figures import plot_kl_to_rank

SIZES = Presets({"quick": {"n": 3, "tol": 0.5}, "full": {"n": 8, "tol": 0.5}})


@register("PLG1", statement="plugin claims report like built-ins", source="my lab, note 7", seeded=True,
          rule="holds when err <= tol at every seed", presets=SIZES)
def check_plg1(config):
    spec = config.preset(SIZES)
    err = 0.1 * (config.seed + 1)
    plot_kl_to_rank(list(range(1, spec["n"] + 1)), {"err": [err] * spec["n"]}, config.figure_dir, name="PLG1_err")
    return ClaimResult("PLG1", "holds" if err <= spec["tol"] else "fails", figures={"err": err}, headline="err",
                       setting={"n": spec["n"]})
'''


@pytest.fixture
def plugin(tmp_path):
    from logitrank.verify.claims._registry import unregister

    path = tmp_path / "my_claims.py"
    path.write_text(PLUGIN)
    yield path
    if "PLG1" in LEDGER:
        unregister("PLG1")


def test_a_plugin_claim_appears_fully_in_the_report(tmp_path, plugin, capsys):
    results = tmp_path / "out" / "checks.json"
    assert main(["check", "PLG1", "--plugin", str(plugin), "--json", str(results), "--seeds", "2"]) == 0
    assert main(["report", "--results", str(results), "--plugin", str(plugin)]) == 0
    md = (results.parent / "report.md").read_text()
    page = (results.parent / "report.html").read_text()
    for text in (md, html.unescape(page)):
        assert "PLG1 — plugin claims report like built-ins" in text and "my lab, note 7" in text
        assert "rule: holds when err <= tol at every seed" in text
        assert "preset quick: n=3, tol=0.5" in text  # the settings it ran with
    assert re.findall(r"!\[PLG1: PLG1_err\]\((\S+)\) \((seed \d)\)", md) == [
        ("figures/tiny/quick/seed0/PLG1_err.png", "seed 0"), ("figures/tiny/quick/seed1/PLG1_err.png", "seed 1")]
    assert page.count("data:image/png;base64,") == 2
    capsys.readouterr()
    assert main(["list", "--plugin", str(plugin)]) == 0
    assert re.search(r"PLG1\s+yes\s+plugin claims report like built-ins \(my lab, note 7\)", capsys.readouterr().out)


def test_a_plugin_claim_without_its_plugin_says_how_to_show_it(tmp_path, plugin):
    results = tmp_path / "checks.json"
    results.write_text(json.dumps([{"id": "ZZPLUG", "verdict": "holds", "figures": {}}]))
    md = _report.render_markdown(*_report.load_results(results))
    assert "ZZPLUG — (a claim of a plugin: pass --plugin MODULE to show its statement)" in md


def test_report_plugin_errors_are_usage_errors(tmp_path, capsys):
    results = tmp_path / "checks.json"
    results.write_text(json.dumps([{"id": "T3", "verdict": "holds", "figures": {}}]))
    with pytest.raises(SystemExit) as info:
        main(["report", "--results", str(results), "--plugin", str(tmp_path / "nope.py")])
    assert info.value.code == 2 and "--plugin" in capsys.readouterr().err
