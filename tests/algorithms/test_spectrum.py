"""The spectral toolkit (algorithms/_spectrum.py): power-law fit, average KL, principal angles."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from logitrank.algorithms import (
    avg_kl,
    avg_kl_to_rank,
    fit_power_law,
    logit_matrix,
    logit_spectrum,
    principal_angles,
    random_subspace_angles,
    rank_one_baseline_kl,
    top_k_columns,
)
from logitrank.synth import random_isan
from logitrank.synth.strategies import isans

# float results compared across code paths: .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- fit_power_law ------------------------------------------------------------------------------
@given(
    st.floats(0.1, 1.5), st.floats(-0.5, 0.5), st.floats(0.01, 100.0), st.integers(10, 3000)
)
def test_fit_recovers_a_planted_model_exactly(alpha, edge, scale, n):
    """σ_i (i = 1 … n−1 after the dropped largest) planted exactly on the regression model: the
    weighted least squares has a zero residual, so α comes back to solver precision (cond(X) ≤ ~1e3)."""
    i = np.arange(1, n)
    tail = scale * i**-alpha * ((n - i) / n) ** edge
    s = np.r_[tail[0] * 10, np.sort(tail)[::-1]] if edge > 0 else np.r_[tail[0] * 10, tail]
    if (np.diff(s) > 0).any():  # the planted model must itself be non-increasing
        return
    fit = fit_power_law(s)
    assert fit.alpha == pytest.approx(alpha, abs=1e-8)
    assert fit.edge == pytest.approx(edge, abs=1e-8)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(fit.fitted, s[1:], rtol=1e-8)


@given(st.floats(0.1, 1.5), st.integers(10, 3000))
def test_original_indexing_recovers_an_exact_power_law(alpha, n):
    s = np.arange(1, n + 1, dtype=float) ** -alpha
    assert fit_power_law(s, indexing="original").alpha == pytest.approx(alpha, abs=1e-8)


def test_paper_indexing_is_biased_low_on_an_exact_power_law():
    """The renumbering after dropping σ_1 shifts every index by one; with weights 1/i this matters."""
    s = np.arange(1, 1001, dtype=float) ** -0.55
    assert fit_power_law(s).alpha == pytest.approx(0.4883, abs=1e-4)


def test_fit_hand_worked_positions():
    s = np.array([9.0, 4.0, 3.0, 2.0, 1.5, 1.0])
    fit = fit_power_law(s)
    assert fit.n == 6 and fit.index.tolist() == [1, 2, 3, 4, 5] and fit.position.tolist() == [2, 3, 4, 5, 6]
    assert fit.observed.tolist() == [4.0, 3.0, 2.0, 1.5, 1.0]  # exact: a copy of s[1:]
    orig = fit_power_law(s, indexing="original")
    assert orig.index.tolist() == [2, 3, 4, 5] and orig.position.tolist() == [2, 3, 4, 5]


# -- average KL ---------------------------------------------------------------------------------
def test_avg_kl_hand_worked():
    L = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)  # two futures, k = 2, uniform rows
    A = torch.tensor([[0.0, math.log(3.0), 0.0, 0.0]], dtype=torch.float64)  # (¼, ¾) then uniform
    expected = 0.5 * (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75))  # mean over 2 pairs
    assert avg_kl(L, A, 2) == pytest.approx(expected, abs=1e-15)


def test_avg_kl_to_rank_zero_is_kl_to_uniform_and_full_rank_is_zero():
    L = _randn(6, 12)
    p = torch.softmax(L.reshape(6, 4, 3), -1)
    to_uniform = float((p * (p.log() + math.log(3))).sum(-1).mean())
    kls = avg_kl_to_rank(L, [0, 6], 3)
    assert kls[0] == pytest.approx(to_uniform, abs=1e-14)
    assert abs(kls[1]) < 1e-14  # KL sums p·(log p − log q): rounding is ~eps per term, not eps²
    assert isinstance(avg_kl_to_rank(L, 2, 3), float)


@given(isans(min_horizon=3, max_horizon=6, min_vocab_size=3, max_vocab_size=5), st.integers(0, 10**6), st.integers(0, 4))
def test_avg_kl_to_rank_obeys_fact_a2(model, seed, r):
    """D^avg(L, L_r) ≤ ½‖L − L_r‖²_F / (n m) = ½ Σ_{i>r} σ_i² / (n m) (Fact A.2 with Eckart–Young)."""
    T = model.horizon
    seqs = model.sample(20, generator=seed).tolist()
    H = [tuple(s[:1]) for s in seqs[:10]]
    F = [tuple(s[1 : 1 + i % (T - 1)]) for i, s in enumerate(seqs[10:])]
    L = logit_matrix(model, H, F, top_k=3)
    r = min(r, min(L.shape))
    s = torch.linalg.svdvals(L)
    bound = 0.5 * float((s[r:] ** 2).sum()) / (10 * 10)
    assert avg_kl_to_rank(L, r, 3) <= bound + 1e-15


def test_rank_one_baseline_is_zero_for_the_empty_history():
    m = random_isan(8, 6, 3, generator=0)
    F = [tuple(s) for s in m.sample(7, generator=1)[:, :2].tolist()]
    cols = top_k_columns(m, F, 4)
    row = logit_matrix(m, [()], F, columns=cols)[0]
    # exact: the one row is the same computation as `row`, so every log-ratio is exactly 0
    assert rank_one_baseline_kl(logit_matrix(m, [()], F, columns=cols), row, 4) == 0.0
    L = logit_matrix(m, [(1,), (2, 3)], F, columns=cols)
    # exact: rank_one_baseline_kl is avg_kl of the same row expanded the same way
    assert rank_one_baseline_kl(L, row, 4) == pytest.approx(avg_kl(L, row.expand_as(L), 4), abs=0)
    assert rank_one_baseline_kl(L, row, 4) > 0


# -- principal angles ------------------------------------------------------------------------------
def test_principal_angles_hand_worked():
    e = torch.eye(3, dtype=torch.float64)
    L1 = torch.cat([e[:, :1], e[:, 1:2] * 0.5], 1)  # column space span(e1, e2), e1 dominant
    L2 = torch.cat([(e[:, 0] + e[:, 2]).reshape(3, 1), e[:, 1:2] * 3], 1)  # span(e1 + e3, e2), e2 dominant
    assert principal_angles(L1, L1, 2) == pytest.approx([0.0, 0.0], abs=1e-7)
    assert principal_angles(L1, L2, 2) == pytest.approx([0.0, math.pi / 4], abs=1e-7)  # e2 shared; e1 vs (e1+e3)/√2
    assert principal_angles(L1, L2, 1) == pytest.approx([math.pi / 2], abs=1e-7)  # e1 vs e2


def test_isan_column_space_does_not_depend_on_the_futures():
    """For one history length, L(H, F) = X W_Fᵀ: every F (real or not) spans the states' span."""
    m = random_isan(6, 9, 4, generator=3)
    H = [tuple(s) for s in m.sample(30, generator=0)[:, :3].tolist()]
    F1 = [tuple(s) for s in m.sample(20, generator=1)[:, :3].tolist()]
    F2 = [tuple(s[::-1]) for s in F1]
    angles = principal_angles(logit_matrix(m, H, F1, top_k=3), logit_spectrum(m, H, F2, top_k=3, rank=4), 4)
    assert angles.max() < 1e-6


def test_random_subspace_angles_match_their_mean():
    """E Σ cos²θ_i = r²/n for independent uniform r-dim subspaces of R^n."""
    n, r = 400, 8
    cos2 = np.mean([np.sum(np.cos(random_subspace_angles(n, r, rng=s)) ** 2) for s in range(60)])
    assert cos2 == pytest.approx(r * r / n, rel=0.2)  # 60 draws: standard error ≈ 5%
    a = random_subspace_angles(50, 5, rng=1)
    assert np.array_equal(a, random_subspace_angles(50, 5, rng=np.random.default_rng(1)))  # exact: same draws, rerun
    assert (np.diff(a) >= 0).all()


# -- bad input ----------------------------------------------------------------------------------------
BAD = [
    (lambda: fit_power_law([3.0, 2.0, 1.0]), ValueError, r"at least 5 values .* got 3"),
    (lambda: fit_power_law([1.0, 2.0, 0.5, 0.4, 0.3]), ValueError, r"non-increasing order"),
    (lambda: fit_power_law([5.0, 4.0, 3.0, 0.0, 0.0]), ValueError, r"must be positive .* got 2 zero values"),
    (lambda: fit_power_law([[1.0]]), ValueError, r"must have 1 dimension\(s\); got shape \(1, 1\)"),
    (lambda: fit_power_law([5.0, 4.0, 3.0, float("nan"), 1.0]), ValueError, r"must be finite; got 1"),
    (lambda: fit_power_law([5.0, 4, 3, 2, 1], indexing="shifted"), ValueError, r"indexing must be one of \('paper', 'original'\); got 'shifted'"),
    (lambda: avg_kl(torch.zeros(2, 4), torch.zeros(2, 6), 2), ValueError, r"A must have the shape of L \(2, 4\); got \(2, 6\)"),
    (lambda: avg_kl(torch.zeros(2, 4), torch.zeros(2, 4), 3), ValueError, r"k must divide the number of columns of L \(4\).* got k=3"),
    (lambda: avg_kl([[0.0]], torch.zeros(1, 1), 1), TypeError, r"L must be a torch.Tensor; got list"),
    (lambda: avg_kl(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4), 2), TypeError, r"L must be a floating tensor"),
    (lambda: avg_kl(torch.zeros(0, 4), torch.zeros(0, 4), 2), ValueError, r"no \(h, f\) pairs"),
    (lambda: avg_kl_to_rank(torch.zeros(2, 4), 3, 2), ValueError, r"r must be <= 2; got 3"),
    (lambda: avg_kl_to_rank(torch.zeros(2, 4), [1, -1], 2), ValueError, r"r\[1\] must be >= 0; got -1"),
    (lambda: rank_one_baseline_kl(torch.zeros(2, 4), torch.zeros(6), 2), ValueError, r"future_logits must have m·k = 4 entries"),
    (lambda: principal_angles(torch.zeros(3, 4), torch.zeros(2, 4), 1), ValueError, r"same number of rows .* got 3 and 2"),
    (lambda: principal_angles(torch.zeros(3, 4), torch.zeros(3, 4), 4), ValueError, r"r must be <= 3; got 4"),
    (lambda: principal_angles(logit_spectrum(random_isan(3, 4, 2, generator=0), [(0,), (1,)], [()]), torch.zeros(2, 3), 1), ValueError, r"L1 is a Spectrum with 0 left vectors; r=1 needs at least r"),
    (lambda: random_subspace_angles(3, 4, rng=0), ValueError, r"r must be <= 3; got 4"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD)
def test_bad_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
