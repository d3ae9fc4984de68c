"""Noisy parity (paper A, Def. C.10 / Fact C.11): the dim-2 and dim-1 ISANs against the closed form."""

import math

import pytest
import torch
from hypothesis import given

from logitrank.algorithms import level_ranks
from logitrank.synth import NoisyParityISAN, all_sequences, noisy_parity, noisy_parity_log_prob
from logitrank.synth.strategies import noisy_parities
from logitrank.verify import tv_distance

EPS64 = torch.finfo(torch.float64).eps

# float results (enumerated distributions, log-probabilities, ranks) checked against closed forms:
# .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def log_prob_tol(T: int, logp: torch.Tensor) -> float:
    """T log-softmax terms are summed, each exact to a few ulps of its size (<= max|log p|), so
    100·T·eps·max(1, max|log p|) bounds the float64 disagreement of two exact formulas."""
    return 100 * T * EPS64 * max(1.0, float(logp.abs().max()))


@pytest.mark.parametrize("hidden_dim", [2, 1])
def test_hand_worked_two_bits(hidden_dim):
    """secret (1, 0), p = 1/4: z uniform (1/4 each), b = z_1 with probability 3/4."""
    m = noisy_parity([1, 0], 0.25, hidden_dim=hidden_dim)
    expected = torch.tensor(
        [1 / 4 * (3 / 4 if b == z1 else 1 / 4) for z1 in (0, 1) for z2 in (0, 1) for b in (0, 1)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(m.distribution(), expected, rtol=0, atol=1e-15)
    half = math.log(3) / 2  # c/2 with c = log((1 − p)/p) = log 3
    torch.testing.assert_close(m.logits([[1, 0], [0, 1]]), torch.tensor([[-half, half], [half, -half]], dtype=torch.float64))
    torch.testing.assert_close(m.logits([[1]]), torch.zeros(1, 2, dtype=torch.float64))  # fair coin


def test_hand_worked_states():
    m1, m2 = noisy_parity([1, 1, 0], 0.1, hidden_dim=1), noisy_parity([1, 1, 0], 0.1)
    # tokens 1, 1, 1: the first two flip the parity (secret bits), the third does not
    # exact: ±1 (d = 1) or 0/1 permutation (d = 2) matrices applied to a ±1/0 state, no rounding
    assert m1.states([[1, 1, 1]])[0, :, 0].tolist() == [1.0, -1.0, 1.0, 1.0]
    assert m2.states([[1, 1, 1]])[0].tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]


@pytest.mark.parametrize("hidden_dim", [2, 1])
def test_planted_secret_is_recovered_from_logit_queries(hidden_dim):
    """Plant a secret; query the last-step logits at the unit prefixes e_i: the sign reveals y_i."""
    secret = torch.randint(0, 2, (20,), generator=torch.Generator().manual_seed(5)).tolist()
    m = noisy_parity(secret, 0.2, hidden_dim=hidden_dim)
    prefixes = torch.eye(20, dtype=torch.long)  # (20, 20): row i is e_i
    recovered = (m.logits(prefixes)[:, 1] > 0).long().tolist()  # token 1 favoured ⇔ parity 1 ⇔ y_i = 1
    assert recovered == secret


@given(noisy_parities())
def test_isan_distribution_equals_closed_form(model):
    """Exact TV by enumeration; tolerance 100·T·eps (products of T softmax factors)."""
    T = model.horizon
    exact = noisy_parity_log_prob(model.secret, model.noise, all_sequences(2, T)).exp()
    assert tv_distance(model.distribution(), exact) <= 100 * T * EPS64
    other = noisy_parity(model.secret, model.noise, hidden_dim=3 - model.hidden_dim)
    assert tv_distance(model.distribution(), other.distribution()) <= 100 * T * EPS64


@given(noisy_parities(max_n_bits=5))
def test_mean_centred_logit_rank_is_one_at_every_level(model):
    """T6: both constructions have level ranks exactly 1 (rows r and −r; noise < 1/2 so r ≠ 0)."""
    assert level_ranks(model) == [1] * model.horizon


@given(noisy_parities())
def test_prefix_log_prob_and_samples_match_closed_form(model):
    seqs = model.sample(16, generator=0)
    for t in (0, model.n_bits // 2, model.horizon):
        exact = noisy_parity_log_prob(model.secret, model.noise, seqs[:, :t])
        torch.testing.assert_close(model.log_prob(seqs[:, :t]), exact, rtol=0, atol=log_prob_tol(model.horizon, exact))
    torch.testing.assert_close(model.exact_log_prob(seqs), model.log_prob(seqs), rtol=0, atol=1e-12)


@pytest.mark.parametrize("hidden_dim", [2, 1])
def test_n64_samples_and_scores_exactly(hidden_dim):
    secret = torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(0)).tolist()
    m = noisy_parity(secret, 0.2, hidden_dim=hidden_dim)
    seqs = m.sample(4000, generator=1)
    assert seqs.shape == (4000, 65)
    exact = noisy_parity_log_prob(secret, 0.2, seqs)
    torch.testing.assert_close(m.log_prob(seqs), exact, rtol=0, atol=log_prob_tol(65, exact))
    assert set(exact.tolist()) == {-64 * math.log(2) + math.log(0.8), -64 * math.log(2) + math.log(0.2)}
    # The flipped fraction is Binomial(4000, 0.2)/4000: sd 0.0063; 5 sd = 0.032 (false alarm < 1e-6).
    parity = (seqs[:, :64] * torch.tensor(secret)).sum(1) % 2
    assert abs(float((seqs[:, 64] != parity).double().mean()) - 0.2) < 0.032
    # The first 64 tokens are fair coins: mean 0.5 ± 5·sqrt(0.25/256000) = ± 0.005.
    assert abs(float(seqs[:, :64].double().mean()) - 0.5) < 0.005


def test_zero_noise_closed_form_is_minus_inf_never_nan():
    lp = noisy_parity_log_prob([1, 1, 1], 0.0, all_sequences(2, 4))
    assert not torch.isnan(lp).any()
    assert torch.isinf(lp).sum() == 8 and float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tiny_noise_stays_finite(dtype):
    """p = 1e-300 gives the logit log((1−p)/p) ≈ 690.8: finite in both dtypes, no NaN."""
    m = noisy_parity([1, 0, 1], 1e-300, dtype=dtype)
    seqs = torch.tensor([[1, 0, 1, 0], [1, 0, 1, 1]])
    lp = m.log_prob(seqs)
    assert lp.dtype == dtype and torch.isfinite(lp).all()
    expected = torch.tensor([-3 * math.log(2), -3 * math.log(2) + math.log(1e-300)], dtype=torch.float64)
    # float32 rounds the logit 690.8 to ~4e-5; float64 to ~1e-13.
    atol = 1e-3 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(lp.double(), expected, rtol=0, atol=atol)


def test_to_keeps_the_source_and_accepts_tensors_and_arrays():
    import numpy as np

    m = noisy_parity(torch.tensor([0, 1, 1]), 0.3, hidden_dim=1)
    assert noisy_parity(np.array([0, 1, 1]), 0.3).secret == (0, 1, 1)
    c = m.to(dtype=torch.float32)
    assert isinstance(c, NoisyParityISAN) and c.secret == (0, 1, 1) and c.hidden_dim == 1 and c.dtype == torch.float32
    assert "NoisyParityISAN(n_bits=3, noise=0.3" in repr(m)


BAD_CALLS = [
    (lambda: noisy_parity([1, 0], 0.0), ValueError, r"noise must lie in \(0, 0.5\) for the ISAN; got 0.0: a noiseless parity bit needs the infinite logit"),
    (lambda: noisy_parity([1, 0], 0.5), ValueError, r"noise must lie in \[0.0, 0.5\); got 0.5"),
    (lambda: noisy_parity([1, 0], -0.1), ValueError, r"noise must lie in \[0.0, 0.5\); got -0.1"),
    (lambda: noisy_parity([1, 0], math.nan), ValueError, r"noise must be finite; got nan"),
    (lambda: noisy_parity([1, 0], "0.1"), TypeError, r"noise must be a real number; got '0.1'"),
    (lambda: noisy_parity([1, 2], 0.1), ValueError, r"secret must hold only the bits 0 and 1; got 2"),
    (lambda: noisy_parity([], 0.1), ValueError, r"secret must hold n >= 1 bits; got an empty sequence"),
    (lambda: noisy_parity([[1, 0]], 0.1), ValueError, r"secret must be a 1-D sequence of 0/1 bits; got shape \(1, 2\)"),
    (lambda: noisy_parity([0.0, 1.0], 0.1), TypeError, r"secret must hold 0/1 ints; got dtype float64"),
    (lambda: noisy_parity("101", 0.1), TypeError, r"secret must be a sequence of 0/1 ints such as \[1, 0, 1\]; got str"),
    (lambda: noisy_parity(5, 0.1), TypeError, r"secret must be a sequence of 0/1 ints such as \[1, 0, 1\]; got int"),
    (lambda: noisy_parity([1, 0], 0.1, hidden_dim=3), ValueError, r"hidden_dim must be <= 2; got 3"),
    (lambda: noisy_parity([1, 0], 0.1, hidden_dim=0), ValueError, r"hidden_dim must be >= 1; got 0"),
    (lambda: noisy_parity([1, 0], 0.1, dtype=torch.int64), TypeError, r"dtype must be a floating torch dtype"),
    (lambda: noisy_parity_log_prob([1, 0], 0.1, [[0, 1, 0, 1]]), ValueError, r"sequences must have length <= 3 \(= n \+ 1 for a secret of n=2 bits\); got length 4"),
    (lambda: noisy_parity_log_prob([1, 0], 0.1, [[0, 2, 0]]), ValueError, r"sequences must hold token ids in \[0, 2\); got id 2"),
    (lambda: noisy_parity_log_prob([1, 0], 0.5, [[0, 1, 0]]), ValueError, r"noise must lie in \[0.0, 0.5\); got 0.5"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD_CALLS, ids=[f"bad{i}" for i in range(len(BAD_CALLS))])
def test_bad_calls_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
