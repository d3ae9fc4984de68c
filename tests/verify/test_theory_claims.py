"""T11 (Lemma C.18 / Corollary C.19) and X2 (conditional samples only): verdicts and mutation tests."""

from dataclasses import replace

import pytest

from logitrank.algorithms import lingen_bound, lingen_distributions
from logitrank.verify._registry import CheckConfig, check_info, registered
from logitrank.verify.checks import _theory_claims as tc

#: a 16-point grid on which every mutation below was seen to break the bound at least once
_SMALL_T11 = {"size": (3, 6, 4), "ell": 2, "scales": [3.0], "targets": 1, "k": [1, 2, 3, 4], "n": [2, 4],
              "noise": [0.0, 1.0]}


@pytest.fixture
def small_t11(monkeypatch, tmp_path):
    monkeypatch.setitem(tc._T11, "quick", _SMALL_T11)
    return CheckConfig(out_dir=str(tmp_path))


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

