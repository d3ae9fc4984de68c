"""T11 (Lemma C.18 / Corollary C.19) and X2 (conditional samples only): verdicts and mutation tests."""

from dataclasses import replace

import pytest
import torch

from logitrank.algorithms import lingen_bound, lingen_distributions
from logitrank.verify.claims._registry import CheckConfig, check_info, registered
from logitrank.verify.claims.checks import _theory_claims as tc

#: a 16-point grid on which every mutation below was seen to break the bound at least once
_SMALL_T11 = {"size": (3, 6, 4), "ell": 2, "scales": [3.0], "targets": 1, "k": [1, 2, 3, 4], "n": [2, 4],
              "noise": [0.0, 1.0]}


@pytest.fixture
def small_t11(tmp_path):
    return CheckConfig(out_dir=str(tmp_path), overrides=_SMALL_T11)


def test_t11_and_x2_are_registered():
    assert {"T11", "X2"} <= set(registered())
    assert not check_info("T11")["seeded"] and check_info("X2")["seeded"] and check_info("X2")["rule"]


def test_t11_holds_and_reports_its_ratio(small_t11):
    r = tc.t11_result(small_t11)
    assert r.verdict == "holds", r.reason
    assert 0 < r.figures["max KL/bound"] <= 1
    assert r.figures["lingen max |Δlogit|"] <= tc.T11_LINGEN_ATOL
    assert list(small_t11.figure_dir.glob("t11_kl_vs_bound.png"))


def _broken_bound(change):
    def bound(grams, v, **kw):
        return change(lingen_bound(grams, v, **kw))
    return bound


@pytest.mark.parametrize("mutation", [
    # LinGen run with a v other than the one the bound was computed for
    {"law": lambda grams, v: lingen_distributions(grams, v + 0.3)},
    # the γ term dropped (then the minimum over a >= 0 sits at a = 0: bound 2k·√(0·Δ) = 0)
    {"bound": _broken_bound(lambda b: replace(b, bound=0.0))},
    # the factor 2k dropped
    {"bound": _broken_bound(lambda b: replace(b, bound=b.bound / (2 * b.k)))},
])
def test_t11_mutations_fail(small_t11, mutation):
    r = tc.t11_result(small_t11, **mutation)
    assert r.verdict == "fails"
    assert r.figures["violations"] >= 1 and "violate" in r.reason


def test_t11_lingen_inconsistency_fails(small_t11, monkeypatch):
    """If the project's lingen() drew from other logits than Algorithm 1's, the check must notice."""
    monkeypatch.setattr(tc, "_lingen_consistency", lambda *a: 1e-3)
    r = tc.t11_result(small_t11)
    assert r.verdict == "fails" and "lingen() disagrees" in r.reason



#: a smaller X2 run: three ranges λ, two sweep points around the budget
_SMALL_X2 = {"lambdas": [1.0, 2.0, 3.0], "trials": 200, "N": [10**3, 10**7]}


@pytest.fixture
def small_x2(tmp_path):
    return CheckConfig(out_dir=str(tmp_path), overrides=_SMALL_X2)


def test_x2_holds_on_one_seed(small_x2):
    r = tc.check_x2(small_x2)
    assert r.verdict == "holds", r.reason
    assert 1.5 <= r.figures["slope d ln N*/dλ (λ >= 1)"] <= 2.5
    assert r.figures["exact TV at budget"] <= 0.1
    assert list(small_x2.figure_dir.glob("x2_*.png"))


def test_x2_fails_when_the_rule_undercounts(small_x2, monkeypatch):
    """Mutation: a sample rule without the e^{2λ} factor (and 1000× cheaper) must turn X2 to fails."""
    import logitrank.algorithms as alg

    true_rule = alg.samples_per_logit
    monkeypatch.setattr(alg, "samples_per_logit",
                        lambda xi, lam, V, *, delta=0.05: max(1, true_rule(xi, 0.0, V, delta=delta) // 1000))
    r = tc.check_x2(small_x2)
    assert r.verdict == "fails" and "N* above the rule" in r.reason and "learners above TV" in r.reason


def test_x2_fails_when_the_oracle_is_biased(small_x2, monkeypatch):
    """Mutation: an estimator whose logits are off by a fixed tilt never reaches TV <= ε."""
    import logitrank.algorithms as alg

    class Tilted(alg.SampleLogitOracle):
        def logits(self, prefixes):
            out = super().logits(prefixes)
            tilt = torch.linspace(-1.0, 1.0, out.shape[1], dtype=out.dtype)
            return out + tilt

    monkeypatch.setattr(alg, "SampleLogitOracle", Tilted)
    r = tc.check_x2(small_x2)
    assert r.verdict == "fails" and "learners above TV" in r.reason
