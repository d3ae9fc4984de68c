"""``logitrank spectrum``: usage errors (exit 2, one line), files written, resume through the cache."""

import json

import numpy as np
import pytest

from logitrank.verify.cli import main

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune " * 30


@pytest.fixture()
def corpus(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text(TEXT)
    return str(p)


@pytest.mark.parametrize("argv, match", [
    (["--n", "3"], "--n must be an integer >= 8"),
    (["--k", "0"], "--k must be an integer >= 1"),
    (["--lengths", "5-9"], "--lengths must be MIN:MAX"),
    (["--lengths", "9:5"], "1 <= MIN <= MAX"),
    (["--dtype", "int8"], "--dtype must be one of"),
    (["--device", "tpu"], "--device must be cpu or cuda"),
    (["--scale", "huge"], "--scale must be one of quick, full, paper; got 'huge'"),
    (["--corpus", "/no/such/corpus"], "--corpus must be one of"),
    (["--seed", "-1"], "--seed must be >= 0"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, match):
    with pytest.raises(SystemExit) as stop:
        main(["spectrum", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def test_writes_sigma_alpha_and_figure_and_resumes(tmp_path, corpus):
    out = tmp_path / "out"
    argv = ["spectrum", "--model", "tiny", "--corpus", corpus, "--n", "24", "--k", "8", "--lengths", "16:38",
            "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["|H|"] == 24 and summary["settings"]["k"] == 8
    for key in ("alpha (paper indexing)", "alpha (original indexing)", "R² (paper indexing)"):
        assert isinstance(summary[key], float)
    sigma = np.load(out / "sigma.npy")
    assert sigma.shape == (24,) and (np.diff(sigma) <= 1e-9).all()
    rows = (out / "spectra.csv").read_text().splitlines()
    assert rows[0] == "factor,i,sigma,sigma_normalized" and {r.split(",")[0] for r in rows[1:]} >= {"1", "2"}
    assert (out / "spectrum.png").stat().st_size > 1000
    chunks = sorted((out / "cache").rglob("*.pt"))
    stamps = [c.stat().st_mtime_ns for c in chunks]
    assert main(argv) == 0  # second run: every chunk from the cache, same σ
    assert [c.stat().st_mtime_ns for c in chunks] == stamps
    # exact: the same cached bytes of L go through the same Gram and eigensolver code in one process
    assert np.array_equal(np.load(out / "sigma.npy"), sigma)
