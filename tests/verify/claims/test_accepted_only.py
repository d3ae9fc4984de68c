"""Issue 31: X1 and X4 judge only samplers the learner accepted. A cell with too few accepted runs is not
judged (its reason gives the counts), and the figures carry the accepted counts."""

import math
import warnings

import pandas as pd
import pytest

from logitrank.verify import CheckConfig, run_check
from logitrank.verify._presets import Presets
from logitrank.verify.claims.checks import _surrogate_claims as x4
from logitrank.verify.claims.checks import _sweep_claims as x1
from logitrank.verify.models import _corpus_cut as corpus_cut

D = [2, 3, 4, 6]


def _cells(tv, accepted):
    return pd.DataFrame({"d": D, "tv": tv, "eps_avg_measured": [0.05] * 4, "accepted": [int(a) for a in accepted]})


def test_x1_fits_accepted_cells_only():
    flat_but_one = [0.05, 0.05, 0.05, 5.0]  # d = 6 far off, but not accepted: never judged
    verdict, k, reason = x1.x1_judged(_cells(flat_but_one, [1, 1, 1, 0]))
    assert verdict == "holds" and abs(k) < 1e-9 and reason == "3/4 d-cells accepted"
    verdict, _, reason = x1.x1_judged(_cells(flat_but_one, [1, 1, 1, 1]))  # accepted, it is judged
    assert verdict == "fails" and "(4/4 d-cells accepted)" in reason


def test_x1_seed_with_too_few_accepted_cells_is_not_judged():
    verdict, k, reason = x1.x1_judged(_cells([0.01, 0.02, 0.04, 0.08], [1, 0, 0, 1]))
    assert verdict == "mixed" and math.isnan(k) and reason.startswith("not judged: 2/4 d-cells accepted (d = [2, 6]")


def test_x1_with_a_learner_that_never_accepts_is_not_judged(tmp_path, monkeypatch):
    from logitrank.verify.experiments.sweep import TASKS

    real = TASKS["learn"]
    monkeypatch.setitem(TASKS, "learn", lambda config, seed: {**real(config, seed), "accepted": 0})
    result = run_check("X1", CheckConfig(scale="quick", out_dir=str(tmp_path), seeds=1,
                                         overrides={"T": 4, "d": [1, 2, 3]}))
    assert result.verdict == "mixed" and "not judged" in result.reason and "0/3 d-cells accepted" in result.reason
    assert result.per_seed[0]["figures"]["accepted d-cells"] == 0 and result.per_seed[0]["figures"]["d-cells"] == 3


def _run(learner, tv, accepted=None, **kw):
    run = {"learner": learner, "d": 2, "queries": 10, "TV": tv, **kw}
    if learner == "learn_approx":
        run.update(rank=2, accepted=accepted)
    else:
        run.setdefault("rank_tol", 0.1)
    return run


DATA = {"exact": True, "truncation": {1: {"TV": 0.3}, 2: {"TV": 0.01}}}  # allowance at d = 2: max(0.02, ε) = 0.1


def test_x4_judges_learn_approx_only_when_accepted():
    ok, judged, counts = x4.judge_runs([_run("learn_isan", 0.05), _run("learn_approx", 0.9, accepted=False)], DATA)
    assert ok and [r["learner"] for r in judged] == ["learn_isan"]  # TV 0.9 > 0.1, but not accepted: not judged
    assert counts == "learn_approx: 0/1 ranks accepted (ranks [2] not accepted: not judged)"
    ok, judged, counts = x4.judge_runs([_run("learn_isan", 0.05), _run("learn_approx", 0.9, accepted=True)], DATA)
    assert not ok and len(judged) == 2 and counts == "learn_approx: 1/1 ranks accepted"


def test_x4_a_learn_isan_error_still_fails_the_seed():
    ok, _, _ = x4.judge_runs([{"learner": "learn_isan", "rank_tol": 0.1, "error": "RankExceededError: x"}], DATA)
    assert not ok


@pytest.fixture
def toy(monkeypatch):
    docs = corpus_cut.corpus_text("docstrings")
    monkeypatch.setattr(x4, "corpus_text", lambda corpus: docs)
    monkeypatch.setattr(x4, "SIZES", Presets({"quick": {
        "vocab": 3, "horizon": 3, "rank_tols": (0.1,), "ranks": (1, 2), "n_validation": 8, "n_spanner": 8, "epochs": 2}}))
    x4._MEMO.clear()
    yield
    x4._MEMO.clear()


def test_x4_end_to_end_reports_the_accepted_counts(toy, tmp_path, monkeypatch):
    real = x4.learn_approx

    def never_accepts(model, **kw):
        return real(model, **{**kw, "n_cert": 2})  # two paths never certify TV <= 0.1

    monkeypatch.setattr(x4, "learn_approx", never_accepts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_check("X4", CheckConfig(out_dir=str(tmp_path), seeds=1))
    seed = result.per_seed[0]
    assert seed["figures"]["learn_approx runs accepted"] == 0 and seed["figures"]["learn_approx runs"] == 2
    assert seed["figures"]["judged runs"] == 1  # the learn_isan run alone
    assert "learn_approx: 0/2 ranks accepted (ranks [1, 2] not accepted: not judged)" in seed["reason"]
    assert all(not r["judged"] for r in seed["figures"]["runs"] if r["learner"] == "learn_approx")
