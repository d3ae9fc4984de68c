"""Copying (paper A, Def. C.8 / Fact C.9): the dim-(n+1) ISAN, the exact distribution, and the TV."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from logitrank.algorithms import level_ranks
from logitrank.synth import CopyingISAN, all_sequences, copying, copying_distribution, copying_log_prob, copying_tv
from logitrank.synth.strategies import copyings
from logitrank.verify import tv_distance

EPS64 = torch.finfo(torch.float64).eps

# float results (enumerated distributions, log-probabilities, ranks) checked against closed forms:
# .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def isan_log_prob_formula(n: int, C: float, seqs: torch.Tensor) -> torch.Tensor:
    """The ISAN's closed form: −n log 2 + (n − k) log σ(C/2) + k log σ(−C/2), k = copy mismatches."""
    k = (seqs[:, n:] != seqs[:, :n]).sum(1).double()
    log_right, log_wrong = -math.log1p(math.exp(-C / 2)), -C / 2 - math.log1p(math.exp(-C / 2))
    return -n * math.log(2) + (n - k) * log_right + k * log_wrong


def test_hand_worked_one_bit():
    """n = 1, C = 2·log 3: σ(C/2) = 3/4, so (a, a) has 1/2·3/4 and (a, 1−a) has 1/2·1/4; TV = 1/4."""
    m = copying(1, 2 * math.log(3))
    torch.testing.assert_close(m.distribution(), torch.tensor([3 / 8, 1 / 8, 1 / 8, 3 / 8], dtype=torch.float64), rtol=0, atol=1e-15)
    assert copying_tv(1, 2 * math.log(3)) == pytest.approx(0.25, abs=1e-15)
    assert copying_tv(1, 2 * math.log(3), method="enumerate") == pytest.approx(0.25, abs=1e-15)
    # exp(−log 2) rounds to 0.5 only if exp is correctly rounded there (libm and vectorised exp may
    # differ by an ulp); exp(−inf) = 0 is exact. One ulp of 0.5 is eps/2: allow 2 ulps.
    torch.testing.assert_close(copying_distribution(1), torch.tensor([0.5, 0.0, 0.0, 0.5], dtype=torch.float64),
                               rtol=0, atol=EPS64)
    # The copy-step logits are ±C/4 after centring.
    q = math.log(3) / 2
    torch.testing.assert_close(m.logits([[0], [1]]), torch.tensor([[q, -q], [-q, q]], dtype=torch.float64))


def test_planted_bits_are_stored_in_the_state():
    """Fact C.9's invariant: after the first n tokens the state is (a_1, …, a_n, 1), and it stays there."""
    a = torch.randint(0, 2, (64, 7), generator=torch.Generator().manual_seed(3))  # 64 planted words
    m = copying(7, 30.0)
    states = m.states(torch.cat([a, a], dim=1))  # (64, 15, 8)
    expected = torch.cat([a.double(), torch.ones(64, 1, dtype=torch.float64)], dim=1)
    # exact: 0/1 transition matrices applied to 0/1 states, every partial sum a small integer
    assert torch.equal(states[:, 7], expected) and torch.equal(states[:, 14], expected)
    # ... and the model copies them back: greedy decoding from the planted prefix returns a.
    seqs = a.clone()
    for _ in range(7):
        seqs = torch.cat([seqs, m.logits(seqs).argmax(1, keepdim=True)], dim=1)
    assert torch.equal(seqs[:, 7:], a)  # integer tokens: argmax of logits ±C/4 = ±7.5, far from a tie


@given(copyings())
def test_enumerated_tv_equals_closed_form_and_log_prob_formula(model):
    """The enumeration sums 4^n terms <= 2^−n each with ~eps relative error: absolute 1e-12 is ample."""
    n, C = model.n_bits, model.strength
    assert model.hidden_dim == n + 1 and model.horizon == 2 * n
    enumerated = tv_distance(model.distribution(), copying_distribution(n))
    assert abs(enumerated - copying_tv(n, C)) <= 1e-12
    seqs = all_sequences(2, 2 * n)
    torch.testing.assert_close(model.log_prob(seqs), isan_log_prob_formula(n, C, seqs), rtol=1e-13, atol=1e-13)


@given(copyings(max_n_bits=3))
def test_logit_rank_at_most_n_plus_one(model):
    assert max(level_ranks(model)) <= model.n_bits + 1


@given(st.integers(1, 40), st.floats(0.1, 200.0))
def test_T5_tv_decreases_with_strength_and_vanishes(n, C):
    tv, tv2 = copying_tv(n, C), copying_tv(n, 2 * C)
    assert 0 <= tv2 < tv < 1
    assert tv <= n * math.exp(-C / 2)  # 1 − (1 − q)^n <= n·q <= n·e^{−C/2}


def test_T5_large_strength_is_finite_and_exact():
    m = copying(3, 2000.0)
    assert copying_tv(3, 2000.0) == 0.0  # exact: e^{−1000} underflows to 0, so −expm1(−3·log1p(0)) = 0
    lp = m.log_prob(torch.tensor([[1, 0, 1, 1, 0, 1], [1, 0, 1, 1, 0, 0]]))
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp, torch.tensor([-3 * math.log(2), -3 * math.log(2) - 1000.0], dtype=torch.float64))


@given(st.integers(1, 4))
def test_exact_copying_marginals_sum_to_one(n):
    for t in range(2 * n + 1):
        p = copying_log_prob(n, all_sequences(2, t)).exp()
        assert abs(float(p.sum()) - 1) <= 1e-15 * 2**t
        assert not torch.isnan(copying_log_prob(n, all_sequences(2, t))).any()


def test_samples_are_near_copies():
    m = copying(10, 12.0)  # each copy step errs with q = σ(−6) ≈ 0.00247
    seqs = m.sample(5000, generator=0)
    errors = (seqs[:, 10:] != seqs[:, :10]).double().mean()
    q = 1 / (1 + math.exp(6.0))
    # errors·50000 ~ Binomial(50000, q): sd·/50000 ≈ 2.2e-4; allow 5 sd.
    assert abs(float(errors) - q) < 5 * math.sqrt(q * (1 - q) / 50000)


def test_to_keeps_the_source():
    c = copying(2, 5.0).to(dtype=torch.float32)
    assert isinstance(c, CopyingISAN) and (c.n_bits, c.strength, c.dtype) == (2, 5.0, torch.float32)
    assert "CopyingISAN(n_bits=2, strength=5.0" in repr(c)


BAD_CALLS = [
    (lambda: copying(0, 1.0), ValueError, r"n_bits must be >= 1; got 0"),
    (lambda: copying(2.0, 1.0), TypeError, r"n_bits must be an integer; got 2.0"),
    (lambda: copying(2, 0.0), ValueError, r"strength must lie in \(0.0, inf\]; got 0.0"),
    (lambda: copying(2, -3.0), ValueError, r"strength must lie in \(0.0, inf\]; got -3.0"),
    (lambda: copying(2, math.inf), ValueError, r"strength must be finite; got inf"),
    (lambda: copying(2, 1.0, dtype=torch.int32), TypeError, r"dtype must be a floating torch dtype"),
    (lambda: copying_tv(2, 1.0, method="mc"), ValueError, r"method must be one of \('closed_form', 'enumerate'\); got 'mc'"),
    (lambda: copying_log_prob(2, [[0, 1, 0, 1, 0]]), ValueError, r"sequences must have length <= 4 \(= 2·n_bits for n_bits=2\); got length 5"),
    (lambda: copying_log_prob(2, [[0, 3]]), ValueError, r"sequences must hold token ids in \[0, 2\); got id 3"),
    (lambda: copying_distribution(11), ValueError, r"copying_distribution enumerates 4\*\*n_bits = 4194304 sequences"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD_CALLS, ids=[f"bad{i}" for i in range(len(BAD_CALLS))])
def test_bad_calls_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
