"""B6 (issue 31): completeness of learn_approx's certificate against the model's ε_avg — the rule, its binomial
slack, that it can fail (a learner that never accepts), and that every run is its own model draw."""

import math

import pytest

import logitrank.verify.claims.checks._completeness_claims as b6
from logitrank.verify import LEDGER
from logitrank.verify.claims import CheckConfig, ClaimResult, run_check
from logitrank.verify.claims._registry import check_info

#: B6 at a size that runs in seconds (the rule unchanged): two ε_avg/ε targets inside c = 0.1, 10 runs each,
#: and one power-law rank budget outside it
SMALL = {"VT": (3, 3), "ratios": (0.01, 0.03), "power_ranks": (3,), "runs": 10}


def _config(tmp_path, **overrides):
    return CheckConfig(scale="quick", out_dir=str(tmp_path), seeds=1, overrides={**SMALL, **overrides})


def test_b6_is_registered_seeded_with_its_rule_and_ledger_statement():
    info = check_info("B6")
    assert info["seeded"] and "c = 0.1" in info["rule"] and "Clopper–Pearson" in info["rule"]
    assert "fresh model draw" in info["rule"] and "cert_generator" in info["rule"] and "gray zone" in info["rule"]
    claim = LEDGER["B6"]
    assert claim.statement.startswith("Completeness: the certificate accepts (w.p. ≥ 1 − δ)") and claim.source.startswith("B")


def test_clopper_pearson_one_sided_bounds():
    lo, hi = b6.clopper_pearson(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.05 ** (1 / 20))  # all successes: lower bound (1 − conf)^{1/n}
    assert b6.clopper_pearson(0, 10)[0] == 0.0
    assert b6.clopper_pearson(16, 20)[1] < 0.95 < b6.clopper_pearson(17, 20)[1]  # the slack at n = 20: 17 of 20 pass
    with pytest.raises(ValueError, match="k must lie in"):
        b6.clopper_pearson(3, 2)


def _rows(n_in: int, k_in: int, n_out: int = 5):
    rows = [{"family": "f", "ratio": 0.05, "epsilon": 0.1, "TV": 0.01, "accepted": i < k_in} for i in range(n_in)]
    return rows + [{"family": "f", "ratio": 1.5, "epsilon": 0.1, "TV": 0.08, "accepted": False} for _ in range(n_out)]


def test_the_rule_on_planted_runs():
    verdict, reason, figures = b6.judge_completeness(_rows(24, 24), delta=0.05)
    assert verdict == "holds" and reason.startswith("24/24 accepted")
    assert b6.judge_completeness(_rows(24, 22), delta=0.05)[0] == "holds"  # within the binomial slack
    verdict, reason, _ = b6.judge_completeness(_rows(24, 19), delta=0.05)
    assert verdict == "fails" and "Clopper–Pearson upper bound" in reason
    verdict, reason, _ = b6.judge_completeness(_rows(19, 19), delta=0.05)
    assert verdict == "mixed" and reason.startswith("not judged: 19 runs")
    # the unjudged runs are reported as their own rows: the curve's bins and the gray zone
    labels = [row["ε_avg/ε"] for row in figures["rows"]]
    assert labels[0].endswith("(judged)") and labels[-1].startswith("gray zone") and "(1, 2]" in labels
    assert figures["acceptance first below 1 − δ above ε_avg/ε"] == 1.0 and figures["gray-zone runs"] == 5


def test_not_judged_seeds_are_named_as_such_across_seeds():
    def result(verdict, reason=""):
        return ClaimResult("B6", verdict, reason=reason)
    assert b6.combine_judged([result("holds"), result("holds")]) == ("holds", "")
    verdict, reason = b6.combine_judged([result("holds"), result("mixed", "not judged: 3 runs")])
    assert verdict == "mixed" and reason.startswith("1 of 2 seeds hold, 0 fail, 1 not judged")
    verdict, reason = b6.combine_judged([result("mixed", "not judged: 3 runs")] * 2)
    assert verdict == "mixed" and reason.startswith("not judged at any of 2 seeds")
    assert b6.combine_judged([result("fails", "x"), result("fails", "y")])[0] == "fails"


def test_b6_runs_independent_draws_and_holds_unbroken(tmp_path):
    result = run_check("B6", _config(tmp_path))
    assert result.verdict == "holds", result.reason
    seed = result.per_seed[0]["figures"]
    runs = seed["runs"]
    assert len(runs) == 10 * 3 and seed["runs where ε_avg ≤ cε"] >= b6.MIN_RUNS
    assert len({r["model seed"] for r in runs}) == len(runs) and len({r["cert seed"] for r in runs}) == len(runs)
    assert seed["accepted with TV > ε"] == 0 and seed["figure"].endswith("B6_completeness.png")
    assert result.headline == "acceptance where ε_avg ≤ 0.1ε" and result.figures[result.headline] == 1.0


def test_mutation_a_learner_that_never_accepts_makes_b6_fail(tmp_path, monkeypatch):
    real = b6.learn_approx

    def never_accepts(model, **kw):
        learned, rep = real(model, **{**kw, "n_cert": 2, "epochs": 1})  # two paths can never certify TV <= ε
        assert not rep.accepted
        return learned, rep

    monkeypatch.setattr(b6, "learn_approx", never_accepts)
    result = run_check("B6", _config(tmp_path, ratios=(0.01, 0.03), power_ranks=()))
    assert result.verdict == "fails", result.reason
    assert "0/20 accepted" in result.reason and math.isclose(result.figures["acceptance where ε_avg ≤ 0.1ε"], 0.0)
