"""Approximately low-rank families: power_law_isan, perturbed, approx_rank_error."""

import itertools
import math

import pytest
import torch
from hypothesis import given

from logitrank.algorithms import level_logit_matrix, level_ranks
from logitrank.synth import (
    LogitModel,
    PerturbedModel,
    PowerLawISAN,
    TimeVaryingISAN,
    all_sequences,
    approx_rank_error,
    copying,
    perturbed,
    power_law_isan,
    random_isan,
)
from logitrank.synth.strategies import isans, power_law_isans

# float results (Gram matrices, spectra, truncation errors) checked against planted values: .ci/run
# runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def rot(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def fitted_exponent(values: torch.Tensor) -> float:
    """−slope of the least-squares line through (log i, log values_i), i = 1..len."""
    i = torch.arange(1, len(values) + 1, dtype=torch.float64)
    X = torch.stack([torch.ones_like(i), i.log()], dim=1)
    return -float(torch.linalg.lstsq(X, values.log().unsqueeze(1)).solution[1])


def history_states(model, t: int) -> torch.Tensor:
    """E_t: the states of all V^t histories, (V^t, d)."""
    return model.states(all_sequences(model.vocab_size, t))[:, -1]


# -- power_law_isan -------------------------------------------------------------------------------
def test_hand_worked_scales_codes_and_readout():
    """d = 4, α = 1: block scales ∝ (1·2)^{−1/2}, (3·4)^{−1/2}, normalised to Σ_k s_k² = 1, i.e.
    s = (√(6/7), √(6/7), √(1/7), √(1/7)). Codes (2 blocks, L = 1, period 2): step 0 (+, +),
    step 1 (+, −), step 2 (+, +): token 1 turns block k by σ·π/2 more than token 0."""
    m = power_law_isan(2, 3, 4, 1.0, generator=0)
    a, b = math.sqrt(6 / 7), math.sqrt(1 / 7)
    torch.testing.assert_close(m.scales, torch.tensor([a, a, b, b], dtype=torch.float64), rtol=0, atol=1e-15)
    for s, signs in enumerate([(1, 1), (1, -1), (1, 1)]):
        turn = torch.block_diag(rot(signs[0] * math.pi / 2), rot(signs[1] * math.pi / 2))
        torch.testing.assert_close(m.A[s, 1], m.A[s, 0] @ turn, rtol=0, atol=1e-15)
    assert m.first_exact_level == 2
    # Readout columns are centred and have norm s_i.
    torch.testing.assert_close(m.B.sum(dim=1), torch.zeros(3, 4, dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(m.B.norm(dim=1), m.scales.expand(3, 4), rtol=0, atol=1e-15)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_planted_power_law_is_recovered_from_the_level_spectrum(alpha):
    """V = 2, T = 12, d = 16, level t = first_exact_level = 4 (16 × 510). Guaranteed: E_tᵀE_t =
    (V^t/2)·I exactly (float64: 1e-12 relative). Measured: σ_i/s_i varies by <= 10% (it is the
    spread of κ(W_t); ~1.01 here) and the fitted exponent is within 5% of α (the staircase of
    paired scales alone fits 0.966·α at d = 16)."""
    m = power_law_isan(2, 12, 16, alpha, generator=3)
    t = m.first_exact_level
    E = history_states(m, t)
    torch.testing.assert_close(E.T @ E, 2.0 ** (t - 1) * torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-12 * 2**t)
    sv = torch.linalg.svdvals(level_logit_matrix(m, t))[:16]
    ratio = sv / m.scales
    assert float(ratio.max() / ratio.min()) <= 1.10
    assert abs(fitted_exponent(sv) - alpha) <= 0.05 * alpha


def test_even_vocabulary_gives_exactly_orthogonal_history_states():
    m = power_law_isan(4, 5, 8, 0.7, generator=1)  # first exact level 1 + ⌈log2 4⌉ = 3
    for t in range(m.first_exact_level, 5):
        E = history_states(m, t)
        torch.testing.assert_close(E.T @ E, 4**t / 2 * torch.eye(8, dtype=torch.float64), rtol=0, atol=1e-12 * 4**t)


@given(power_law_isans(max_vocab_size=3, max_horizon=5, max_hidden_dim=6))
def test_power_law_isans_are_centred_rank_bounded_and_planted(model):
    d, V = model.hidden_dim, model.vocab_size
    assert isinstance(model, PowerLawISAN) and d % 2 == 0
    logits = model.logits(model.sample(4, generator=0)[:, : model.horizon - 1])
    torch.testing.assert_close(logits.sum(-1), torch.zeros(4, dtype=torch.float64), rtol=0, atol=1e-12)
    assert max(level_ranks(model)) <= d
    # exact: repeat_interleave copies each block's scale into both coordinates of the pair
    assert float((model.scales[0::2] - model.scales[1::2]).abs().max()) == 0.0  # equal in pairs
    assert bool((model.scales[2::2] < model.scales[:-2:2]).all())  # strictly decreasing blocks
    assert abs(float((model.scales[0::2] ** 2).sum()) - 1.0) <= 1e-12  # Σ_k s_k² = scale² = 1
    if V % 2 == 0:
        for t in range(model.first_exact_level, model.horizon):
            E = history_states(model, t)
            torch.testing.assert_close(E.T @ E, V**t / 2 * torch.eye(d, dtype=torch.float64), rtol=0, atol=1e-12 * V**t)


# -- perturbed ------------------------------------------------------------------------------------
def uniform_isan(V: int, T: int) -> TimeVaryingISAN:
    """All logits zero: the uniform distribution over Σ^T."""
    return TimeVaryingISAN(torch.ones(T, V, 1, 1, dtype=torch.float64), torch.zeros(T, V, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))


@pytest.mark.parametrize("V", [2, 3, 4, 5])
def test_perturbation_has_the_documented_size(V):
    """Entries in {−eps, 0, eps}: ⌊V/2⌋ of each sign per row, row sums 0, mean |·| = eps·2⌊V/2⌋/V."""
    base = random_isan(V, 6, 2, generator=0)
    m = perturbed(base, 0.3, generator=1)
    assert isinstance(m, PerturbedModel) and (m.vocab_size, m.horizon) == (V, 6)
    prefixes = base.sample(200, generator=2)[:, :4]
    diff = m.logits(prefixes) - base.logits(prefixes)  # (200, V)
    half = V // 2
    expected = sorted([-0.3] * half + [0.0] * (V % 2) + [0.3] * half)
    for row in diff.tolist():
        assert [round(v, 12) for v in sorted(row)] == expected
    torch.testing.assert_close(diff, m.perturbation(prefixes), rtol=0, atol=1e-12)
    # 200 prefixes of a V-token pattern space: the patterns are not all the same (hashing works).
    assert len({tuple(r) for r in diff.sign().tolist()}) > 1


def test_perturbation_is_deterministic_and_keyed_by_the_seed():
    base = random_isan(4, 5, 2, generator=0)
    p = base.sample(50, generator=0)[:, :3]
    a, b, c = perturbed(base, 1.0, generator=7), perturbed(base, 1.0, generator=7), perturbed(base, 1.0, generator=8)
    # exact (all three): eps = 1 times a ±1/0 pattern hashed from the integer tokens, row by row
    assert torch.equal(a.perturbation(p), b.perturbation(p))
    assert not torch.equal(a.perturbation(p), c.perturbation(p))
    assert torch.equal(a.perturbation(p[:5]), a.perturbation(p)[:5])  # a function of the prefix only


def test_planted_perturbation_of_the_uniform_model_is_full_rank():
    """Logits of perturbed(uniform) are exactly eps·ξ; its level matrices have full rank
    min(V^t, (V−1)·#futures) (V = 2: each future contributes one independent centred column)."""
    m = perturbed(uniform_isan(2, 7), 0.5, generator=0)
    for t in (2, 3, 4):
        L = level_logit_matrix(m, t)
        futures = 2 ** (7 - t) - 1
        assert torch.linalg.matrix_rank(L) == min(2**t, futures)
        assert set(L.abs().unique().tolist()) == {0.5}


# -- approx_rank_error ----------------------------------------------------------------------------
def test_hand_worked_copying_one_bit():
    """copying(1, C): at level 1 the rows are ±(C/4, −C/4) (futures are all empty), so the rank-0
    error is C/4 exactly and rank 1 is exact; level 0 has one row."""
    err0 = approx_rank_error(copying(1, 8.0), 0, n_histories=10, n_futures=12, generator=0)
    # exact: with C = 8 every level-1 logit is ±2 (0/1 states times readouts 4 and 8, centred), the
    # rank-0 approximation is the zero matrix, and the mean of equal |entries| 2.0 has no rounding
    assert err0[1] == 2.0 and 0.0 < err0[0] <= 2.0
    err1 = approx_rank_error(copying(1, 8.0), 1, n_histories=10, n_futures=12, generator=0)
    assert float(err1.max()) <= 1e-14  # SVD rounding: a few eps × the logit scale 2


@given(isans(min_vocab_size=3, min_horizon=4, max_horizon=5, max_hidden_dim=2))
def test_planted_rank_and_perturbation_size_are_recovered(base):
    """Planted: a rank-d ISAN plus eps·ξ. The rank-d truncation's mean |error| <= its RMS error <=
    the RMS of eps·ξ = eps·√(2⌊V/2⌋/V) (an exact inequality; 1e-12 for rounding). Without the
    perturbation the rank-d error is rounding only (1e-12; logits are O(1))."""
    d, V, eps = base.hidden_dim, base.vocab_size, 0.05
    clean = approx_rank_error(base, d, n_histories=24, n_futures=16, generator=1)
    assert float(clean.max()) <= 1e-12
    noisy = approx_rank_error(perturbed(base, eps, generator=2), d, n_histories=24, n_futures=16, generator=1)
    assert float(noisy.max()) <= eps * math.sqrt(2 * (V // 2) / V) + 1e-12
    # The perturbation is high rank, so rank d cannot absorb it at level 2 (up to V² distinct rows,
    # (V−1)(V+1) independent columns). Not a theorem: measured 0.29–0.9 of the mean |eps·ξ| on
    # V ∈ {3, 4}, T ∈ {4, 5}, d ∈ {1, 2}; 0.1 flags a truncation that swallowed the perturbation.
    assert float(noisy[2]) >= 0.1 * eps * 2 * (V // 2) / V


def test_power_law_error_falls_with_rank():
    m = power_law_isan(2, 10, 16, 1.0, generator=0)
    errs = [float(approx_rank_error(m, r, n_histories=48, n_futures=48, generator=0).max()) for r in (1, 2, 4, 8, 16)]
    assert all(b < a for a, b in itertools.pairwise(errs)), errs
    assert errs[-1] <= 1e-12 and errs[0] > 1e-2


class Unbounded(LogitModel):
    vocab_size, horizon, device, dtype = 2, None, torch.device("cpu"), torch.float64

    def _raw_logits(self, prefixes):
        return torch.zeros(prefixes.shape[0], 2, dtype=torch.float64)


ISAN = random_isan(3, 4, 2, generator=0)
BAD_CALLS = [
    (lambda: power_law_isan(2, 4, 3, 1.0, generator=0), ValueError, r"hidden_dim must be even \(the state is a stack of planar rotation blocks\); got 3"),
    (lambda: power_law_isan(2, 4, 0, 1.0, generator=0), ValueError, r"hidden_dim must be >= 2; got 0"),
    (lambda: power_law_isan(2, 4, 4, 0.0, generator=0), ValueError, r"alpha must lie in \(0.0, inf\]; got 0.0"),
    (lambda: power_law_isan(2, 4, 4, -1.0, generator=0), ValueError, r"alpha must lie in \(0.0, inf\]; got -1.0"),
    (lambda: power_law_isan(1, 4, 4, 1.0, generator=0), ValueError, r"vocab_size must be >= 2; got 1"),
    (lambda: power_law_isan(2, 4, 4, 1.0, generator=0, scale=0.0), ValueError, r"scale must lie in \(0.0, inf\]; got 0.0"),
    (lambda: power_law_isan(2, 4, 4, 1.0, generator=1.5), TypeError, r"generator must be a torch.Generator or an int seed; got float"),
    (lambda: perturbed(ISAN, -0.1, generator=0), ValueError, r"eps must lie in \[0.0, inf\]; got -0.1"),
    (lambda: perturbed(object(), 0.1, generator=0), TypeError, r"model must follow the synth.LanguageModel protocol; got object"),
    (lambda: perturbed(ISAN, 0.1, generator=0).perturbation([[0, 5]]), ValueError, r"prefixes must hold token ids in \[0, 3\); got id 5"),
    (lambda: approx_rank_error(ISAN, -1, generator=0), ValueError, r"rank must be >= 0; got -1"),
    (lambda: approx_rank_error(ISAN, 1, n_histories=0, generator=0), ValueError, r"n_histories must be >= 1; got 0"),
    (lambda: approx_rank_error(ISAN, 1, n_futures=0, generator=0), ValueError, r"n_futures must be >= 1; got 0"),
    (lambda: approx_rank_error(Unbounded(), 1, generator=0), ValueError, r"approx_rank_error needs a model with a finite horizon; got horizon=None"),
    (lambda: approx_rank_error("model", 1, generator=0), TypeError, r"model must follow the synth.LanguageModel protocol; got str"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD_CALLS, ids=[f"bad{i}" for i in range(len(BAD_CALLS))])
def test_bad_calls_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
