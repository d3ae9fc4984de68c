"""Issue 35, item 3: ``sweep show`` and ``report --sweep`` tables a reviewer can read.

Rows sorted by the grid keys (numbers as numbers), columns equal in every row folded into a header line,
metrics with no value dropped, metrics chosen with ``--metrics``, the HTML table in pages of a few metrics.
"""

import re
import warnings

import pytest

from logitrank.verify.cli import main
from logitrank.verify.experiments.sweep import SweepSpec, load, run_sweep, sweep_table
from logitrank.verify.experiments.sweep._table import METRICS_PER_PAGE

SPEC = SweepSpec(name="t", task="learn", seeds=2, grid={"xi": [1e-3, 0.0, 1e-6], "d": [2, 1]},
                 fixed={"family": "random_isan", "V": 2, "T": 3, "learner": "exact", "rank_tol": "auto"})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("tables") / "logitrank.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a rank-margin warning of one cell is beside the point here
        run_sweep(SPEC, store=db)
    return db


def test_rows_are_sorted_and_constant_columns_folded(store):
    table = sweep_table(load(store, "t"))
    frame = table.frame
    assert table.keys == ["xi", "d"] or table.keys == ["d", "xi"]
    keys = list(zip(*(frame[k] for k in table.keys)))
    as_numbers = [tuple(float(v) for v in key) for key in keys]
    assert as_numbers == sorted(as_numbers)  # 0 < 1e-06 < 0.001: numbers, not their text
    assert {"V": 2, "T": 3, "learner": "exact", "seeds": 2, "failed": 0}.items() <= table.fixed.items()
    assert not {"V", "T", "learner", "seeds", "failed", "cell"} & set(frame.columns)
    df = load(store, "t")
    df["never_measured"] = float("nan")  # e.g. the approximate learner's metrics in an exact-learner sweep
    df.attrs["metric_columns"] = [*df.attrs["metric_columns"], "never_measured"]
    table = sweep_table(df)
    assert table.dropped == ["never_measured"] and "never_measured" not in table.frame.columns
    assert "no value in any row (left out): never_measured" in table.header_lines()


def test_sweep_show_prints_the_folded_sorted_table(store, capsys):
    assert main(["sweep", "show", "t", "--store", str(store), "--metrics", "tv_truth", "queries"]) == 0
    out = capsys.readouterr().out
    assert "same in every row: " in out and "V=2" in out and "seeds=2" in out
    header = next(line for line in out.splitlines() if "tv_truth" in line)
    assert header.split() == ["d", "xi", "tv_truth", "queries"] or header.split() == ["xi", "d", "tv_truth", "queries"]
    assert "epochs" not in out and "0.000000" not in out and "1e-06" in out
    with pytest.raises(SystemExit) as info:
        main(["sweep", "show", "t", "--store", str(store), "--metrics", "nope"])
    assert info.value.code == 2 and "--metrics ['nope'] not in sweep 't'" in capsys.readouterr().err


def test_report_sweep_pages_its_table_and_takes_metrics(store, tmp_path, capsys):
    results = tmp_path / "checks.json"
    results.write_text('[{"id": "T3", "verdict": "holds", "figures": {}}]')
    assert main(["report", "--results", str(results), "--sweep", "t", "--store", str(store)]) == 0
    page = (tmp_path / "sweeps" / "t.html").read_text()
    tables = re.findall(r"<table.*?</table>", page, re.DOTALL)
    assert len(tables) > 1 and "<div class='page'>" in page
    for t in tables:
        heads = re.findall(r"<th>(.*?)</th>", t)
        assert heads[:2] in (["d", "xi"], ["xi", "d"]) and len(heads) - 2 <= METRICS_PER_PAGE
    assert "same in every row" in page and re.search(r"[0-9a-f]{16}", page.split("base64,")[0]) is None
    assert main(["report", "--results", str(results), "--sweep", "t", "--store", str(store),
                 "--metrics", "tv_truth"]) == 0
    md = (tmp_path / "sweeps" / "t.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| "))
    assert sorted(c.strip() for c in header.strip("|").split("|")) == ["d", "tv_truth", "xi"]
    with pytest.raises(SystemExit) as info:
        main(["report", "--results", str(results), "--metrics", "tv_truth"])
    assert info.value.code == 2 and "--metrics goes with --sweep" in capsys.readouterr().err
