"""Mutation tests (issue 11): a deliberately broken model, learner or rank function must turn the
verdicts of T1, T2 and T8 to "fails". Each check also runs unbroken, at a reduced size, and holds."""

import pytest
import torch

import logitrank.verify.claims.checks._isan_claims as isan_claims
import logitrank.verify.claims.checks._learner_claims as learner_claims
from logitrank.algorithms import isan_from_spanning_sets, learn_isan
from logitrank.synth import TimeVaryingISAN
from logitrank.verify.claims._registry import CheckConfig


@pytest.fixture
def config(tmp_path):
    return CheckConfig(scale="quick", out_dir=str(tmp_path))


@pytest.fixture
def small_t8(tmp_path):
    """T8 at a size that runs in a few seconds (the rules are unchanged)."""
    return CheckConfig(scale="quick", out_dir=str(tmp_path), overrides={
        "sizes": [(2, 5, 2), (3, 4, 2)], "seeds": 2, "epsilon": 0.1,
        "noisy_size": (3, 4, 2), "noisy_xi": [1e-6], "noisy_rank_tol": 1e-3,
        "scaling_d": [1, 2], "scaling_d_at_VT": (2, 4), "scaling_V": [2, 3], "scaling_V_at_dT": (1, 4),
        "scaling_T": [3, 4], "scaling_T_at_Vd": (2, 1)})


def _perturb_one_transition(model: TimeVaryingISAN, delta: float = 0.05) -> TimeVaryingISAN:
    A = model.A.clone()
    A[1, 0, 0, 0] += delta  # one entry of one transition matrix, after the first token
    return TimeVaryingISAN(A, model.B, model.x0)


# --- T1: Fact C.4 -------------------------------------------------------------------------------------


def test_t1_holds_unbroken(config):
    assert isan_claims.check_t1(config).verdict == "holds"


def test_t1_fails_when_level_ranks_returns_zeros(config, monkeypatch):
    """Zeros satisfy rank <= d; only the generic-rank equality catches them."""
    monkeypatch.setattr(isan_claims, "level_ranks", lambda model: [0] * model.horizon)
    result = isan_claims.check_t1(config)
    assert result.verdict == "fails" and result.figures["max(rank − d)"] < 0
    assert "reach the generic rank" in result.reason


def test_t1_fails_when_a_rank_exceeds_d(config, monkeypatch):
    real = isan_claims.level_ranks
    monkeypatch.setattr(isan_claims, "level_ranks", lambda model: [r + 1 for r in real(model)])
    assert isan_claims.check_t1(config).verdict == "fails"


# --- T2: Lemma C.3 ------------------------------------------------------------------------------------


def test_t2_fails_when_one_basis_row_is_dropped(config, monkeypatch):
    real = learner_claims._spanning_rows

    def drop_one(model, t):
        rows = real(model, t)
        return rows[:-1] if len(rows) > 1 else rows

    monkeypatch.setattr(learner_claims, "_spanning_rows", drop_one)
    result = learner_claims.check_t2(config)
    assert result.verdict == "fails" and result.figures["max TV"] > learner_claims.TV_EXACT_TOL


def test_t2_fails_when_the_construction_is_perturbed(config, monkeypatch):
    monkeypatch.setattr(learner_claims, "isan_from_spanning_sets",
                        lambda *a, **k: _perturb_one_transition(isan_from_spanning_sets(*a, **k)))
    assert learner_claims.check_t2(config).verdict == "fails"


# --- T8: Theorem 4.4 ----------------------------------------------------------------------------------


def test_t8_holds_unbroken(small_t8):
    result = learner_claims.check_t8(small_t8)
    assert result.verdict == "holds", result.reason


def test_t8_fails_when_one_learned_transition_is_perturbed(small_t8, monkeypatch):
    """The broken learner stays far inside ε (the old rule passed it); the exact-oracle rule does not."""

    def broken(model, **kwargs):
        learned, report = learn_isan(model, **kwargs)
        return _perturb_one_transition(learned), report

    monkeypatch.setattr(learner_claims, "learn_isan", broken)
    result = learner_claims.check_t8(small_t8)
    assert result.verdict == "fails"
    assert learner_claims.TV_EXACT_TOL < result.figures["max TV (exact oracle)"] < 0.1  # the ε rule alone: holds


def test_t8_fails_when_the_learner_drops_one_history(small_t8, monkeypatch):
    def broken(model, **kwargs):
        _, report = learn_isan(model, **kwargs)
        H = [list(h) for h in report.histories]
        t = max(range(1, len(H)), key=lambda s: len(H[s]))
        H[t] = H[t][:-1] if len(H[t]) > 1 else H[t]
        return isan_from_spanning_sets(model, H, report.futures), report

    monkeypatch.setattr(learner_claims, "learn_isan", broken)
    assert learner_claims.check_t8(small_t8).verdict == "fails"


def test_t8_noisy_runs_keep_the_epsilon_rule(small_t8):
    result = learner_claims.check_t8(small_t8)
    noisy = result.figures["noisy runs"]
    assert noisy and all(r["TV"] <= 10 * r["xi"] for r in noisy)
    assert torch.tensor([r["TV"] for r in noisy]).mean() <= result.figures["epsilon"]
