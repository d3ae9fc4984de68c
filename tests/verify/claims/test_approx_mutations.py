"""Mutation tests for B1 (issue 11): a deliberately broken sampler or learner must turn B1's verdict to
"fails"; unbroken, at the same reduced size, it holds. Called on one seed (the check's own function;
the registry's seeding is tested in test_registry_seeds.py)."""

import pytest

import logitrank.verify.claims.checks._approx_claims as approx_claims
from logitrank.algorithms import LPSampler
from logitrank.verify.claims._registry import CheckConfig, check_info


@pytest.fixture
def small_b1(tmp_path):
    """B1 at a size that runs in seconds (rules unchanged): one exact-rank model, one perturbed model at
    two sizes (1e-6 is inside the judged regime 2βd·ε_avg <= g), one power-law model."""
    return CheckConfig(scale="quick", out_dir=str(tmp_path), overrides={
        "exact": [(3, 5, 3)], "perturbed": [(3, 5, 3)], "eps": [1e-6, 1e-3], "power_law": [(2, 5, 4, 1.0, [2])],
        "n_validation": 16, "n_spanner": 32, "epochs": 6})


def test_b1_is_registered_seeded_with_a_rule():
    info = check_info("B1")
    assert info["seeded"] and "every seed" in info["rule"]
    for cid in ("B2", "B3", "B4"):
        assert check_info(cid)["seeded"] and check_info(cid)["rule"]


def test_b1_holds_unbroken(small_b1):
    result = approx_claims.check_b1(small_b1)
    assert result.verdict == "holds", result.reason
    assert result.figures["max exact-rank TV vs truth"] <= approx_claims.TV_EXACT_TOL
    # Not-accepted runs are counted, not hidden.
    rows = [r for rs in result.figures["approximate"].values() for r in rs]
    assert result.figures["approximate runs accepted"] == sum(r["accepted"] for r in rows)
    assert all("fallback prefixes" in r and "dropped epochs" in r for r in rows)


def test_b1_fails_with_a_broken_sampler(small_b1, monkeypatch):
    """Every learned sampler adds 0.05 to the first token's logit after the first position."""
    raw = LPSampler._raw_logits

    def broken(self, prefixes):
        out = raw(self, prefixes)
        if prefixes.shape[1] >= 1:
            out = out.clone()
            out[:, 0] += 0.05
        return out

    monkeypatch.setattr(LPSampler, "_raw_logits", broken)
    result = approx_claims.check_b1(small_b1)
    assert result.verdict == "fails"
    assert result.figures["max exact-rank TV vs truth"] > 1e-3


def test_b1_fails_with_a_learner_that_never_adds_witnesses(small_b1, monkeypatch):
    """A learner whose validation never fires (g = 1e9): F̂_s keeps only single tokens, which at exact
    rank d = 3 > V − 1 misses a direction, and the run is 'accepted' at epoch 1."""
    real = approx_claims._learn_approx
    monkeypatch.setattr(approx_claims, "_learn_approx", lambda model, **kw: real(model, **{**kw, "threshold": 1e9}))
    result = approx_claims.check_b1(small_b1)
    assert result.verdict == "fails"
    assert result.figures["max exact-rank TV vs truth"] > 1e-6
