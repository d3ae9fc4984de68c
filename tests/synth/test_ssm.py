"""Linear-in-state SSMs (paper A, Defs. C.5–C.6) and their ISAN of dim d + 2q + 1 (Fact C.7)."""

import math

import pytest
import torch
from hypothesis import given

from logitrank.algorithms import level_ranks
from logitrank.synth import ISAN, LinearSSM, LogitModel, random_linear_ssm
from logitrank.synth.strategies import linear_ssms
from logitrank.verify import tv_distance

EPS64 = torch.finfo(torch.float64).eps

# float results compared across code paths (the SSM recurrence, its ISAN, the generic re-run paths):
# .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def hand_ssm() -> LinearSSM:
    """V = 2, d = p = q = 1, T = 3. x_t = x_{t−1} + u_t (A = B = 1), y_t = x_{t−1} (C = 1, D = 0),
    scores U y = (0, y·log 2), u_1 = 1, u_{t+1} = z_t (E = [0, 1]), x_0 = 0.
    Step 1: y = 0, fair coin. Step 2: y = x_1 = 1, Pr[1] = 2/3. Step 3: y = x_2 = 1 + z_1,
    Pr[1] = 2/3 after z_1 = 0 and 4/5 after z_1 = 1."""
    one = torch.ones(3, 1, 1, dtype=torch.float64)
    return LinearSSM(
        A=one, B=one, C=one, D=torch.zeros(3, 1, 1, dtype=torch.float64),
        U=torch.tensor([[0.0], [math.log(2)]], dtype=torch.float64),
        E=torch.tensor([[0.0, 1.0]], dtype=torch.float64),
        x0=torch.zeros(1, dtype=torch.float64), u1=torch.ones(1, dtype=torch.float64), horizon=3,
    )


def test_hand_worked_distribution():
    m = hand_ssm()
    expected = []
    for z1 in (0, 1):
        p3 = 2 / 3 if z1 == 0 else 4 / 5
        for z2 in (0, 1):
            for z3 in (0, 1):
                expected.append(1 / 2 * (2 / 3 if z2 else 1 / 3) * (p3 if z3 else 1 - p3))
    expected = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(m.distribution(), expected, rtol=0, atol=1e-15)
    isan = m.to_isan()
    assert isinstance(isan, ISAN) and isan.hidden_dim == 4  # d + 2q + 1 = 1 + 2 + 1
    torch.testing.assert_close(isan.distribution(), expected, rtol=0, atol=1e-15)
    # exact: A = B = 1 and 0/1 inputs, so the states are small integers with no rounding
    assert m.states([[1, 0]])[0, :, 0].tolist() == [0.0, 1.0, 2.0]  # x_0, x_1 = u_1, x_2 = 1 + z_1


def test_planted_states_are_the_isan_state_blocks():
    """The paper's invariant: ISAN state h_{s} = (x_{s+1}, C(u_{s+1}) x_s, D(u_{s+1}) u_{s+1}, 1)."""
    m = random_linear_ssm(4, 6, state_dim=3, input_dim=2, output_dim=2, generator=4)
    isan = m.to_isan()
    seqs = m.sample(32, generator=0)
    x = m.states(seqs)  # (32, 7, 3): x_0 … x_6
    h = isan.states(seqs)  # (32, 7, 8)
    d, q = 3, 2
    torch.testing.assert_close(h[:, :-1, :d], x[:, 1:], rtol=1e-12, atol=1e-12)
    # exact: the constant coordinate is 1·1 plus products of 0 with finite values, whatever the order
    assert torch.equal(h[:, :, -1], torch.ones(32, 7, dtype=torch.float64))
    ids = torch.cat([torch.full((32, 1), 4), seqs], dim=1)  # input id of u_1 … u_7
    for s in range(6):
        Cx = torch.bmm(m.C[ids[:, s]], x[:, s].unsqueeze(-1)).squeeze(-1)  # (32, q)
        Du = torch.einsum("bqp,bp->bq", m.D[ids[:, s]], m._inputs[ids[:, s]])  # (32, q)
        torch.testing.assert_close(h[:, s, d : d + q], Cx, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(h[:, s, d + q : d + 2 * q], Du, rtol=1e-12, atol=1e-12)


@given(linear_ssms())
def test_T4_isan_has_the_same_distribution(ssm):
    """Exact TV by enumeration; 100·T·eps (products of T softmax factors, a few ulps each)."""
    isan = ssm.to_isan()
    assert isan.hidden_dim == ssm.state_dim + 2 * ssm.output_dim + 1
    assert tv_distance(ssm.distribution(), isan.distribution()) <= 100 * ssm.horizon * EPS64
    prefix = ssm.sample(5, generator=0)[:, : ssm.horizon - 1]
    torch.testing.assert_close(ssm.logits(prefix), isan.logits(prefix), rtol=1e-12, atol=1e-12)


@given(linear_ssms(max_horizon=3))
def test_own_sampler_and_scorer_match_the_generic_paths(ssm):
    """The O(T) overrides against LogitModel's generic re-run-every-prefix versions."""
    seqs = ssm.sample(6, generator=1)
    torch.testing.assert_close(ssm.log_prob(seqs), LogitModel.log_prob(ssm, seqs), rtol=1e-12, atol=1e-12)
    # integer tokens, same draws from the same stream. The two samplers compute the probabilities by
    # different routes (O(T) recurrence vs re-running every prefix), equal only to rounding: a token
    # can differ only if two of multinomial's ratios p_i/q_i tie to ~1e-16 (odds ~1e-16 per draw)
    assert torch.equal(LogitModel.sample(ssm, 6, generator=1), seqs)


@given(linear_ssms(max_vocab_size=3, max_horizon=5))
def test_logit_rank_at_most_d_plus_min_q_v_minus_1_plus_1(ssm):
    """Beyond Fact C.7: rows are linear in (P·U·y_{t+1}, x_{t+1}, 1), so rank <= d + min(q, V−1) + 1,
    which is <= the ISAN's d + 2q + 1 (float64 SVD, tolerance eps·max(m, n)·σ_max)."""
    d, q, V = ssm.state_dim, ssm.output_dim, ssm.vocab_size
    assert max(level_ranks(ssm)) <= d + min(q, V - 1) + 1


def test_long_horizon_log_prob_agreement():
    m = random_linear_ssm(6, 100, state_dim=5, input_dim=4, output_dim=3, generator=2)
    seqs = m.sample(200, generator=3)
    a, b = m.log_prob(seqs), m.to_isan().log_prob(seqs)
    # 100 summed log-softmax terms, each exact to a few ulps of |log p| <= max|a|.
    torch.testing.assert_close(a, b, rtol=0, atol=100 * 100 * EPS64 * float(a.abs().max()))


def test_reproducible_and_dtype_device_follow():
    a = random_linear_ssm(3, 4, state_dim=2, input_dim=2, output_dim=2, generator=7)
    b = random_linear_ssm(3, 4, state_dim=2, input_dim=2, output_dim=2, generator=7, dtype=torch.float32)
    # exact: the same draws and the same construction, rerun
    assert torch.equal(a.A, random_linear_ssm(3, 4, state_dim=2, input_dim=2, output_dim=2, generator=7).A)
    assert b.dtype == torch.float32 and b.to_isan().dtype == torch.float32
    torch.testing.assert_close(b.distribution().double(), a.distribution(), rtol=0, atol=1e-5)
    assert a.to(dtype=torch.float32).dtype == torch.float32
    assert "LinearSSM(vocab_size=3, horizon=4, state_dim=2" in repr(a)


M = random_linear_ssm(3, 4, state_dim=2, input_dim=2, output_dim=1, generator=0)
P = {"A": M.A, "B": M.B, "C": M.C, "D": M.D, "U": M.U, "E": M.E, "x0": M.x0, "u1": M.u1}


def with_(**changes):
    return lambda: LinearSSM(**{**P, **changes}, horizon=4)


BAD_CALLS = [
    (with_(A=M.A[:3], B=M.B[:3], C=M.C[:3], D=M.D[:3]), ValueError, r"A, B, C and D must have V \+ 1 = 4 rows \(one per token, the last for the first input u1\)"),
    (with_(B=M.B[:, :1]), ValueError, r"B must have shape \(V\+1, d, p\) with d=2"),
    (with_(U=M.U[:2]), ValueError, r"E must have shape \(p, V\) with V=2"),
    (with_(E=M.E[:1]), ValueError, r"E must have shape \(p, V\) with p=2"),
    (with_(x0=M.x0.float()), TypeError, r"A, B, C, D, U, E, x0 and u1 must share one dtype"),
    (with_(C=torch.full_like(M.C, math.nan)), ValueError, r"C must be finite"),
    (with_(D=M.D.numpy()), TypeError, r"D must be a torch.Tensor; got ndarray"),
    (lambda: LinearSSM(**P, horizon=0), ValueError, r"horizon must be >= 1; got 0"),
    (lambda: random_linear_ssm(1, 4, state_dim=1, input_dim=1, output_dim=1, generator=0), ValueError, r"vocab_size must be >= 2; got 1"),
    (lambda: random_linear_ssm(2, 4, state_dim=0, input_dim=1, output_dim=1, generator=0), ValueError, r"state_dim must be >= 1; got 0"),
    (lambda: random_linear_ssm(2, 4, state_dim=1, input_dim=0, output_dim=1, generator=0), ValueError, r"input_dim must be >= 1; got 0"),
    (lambda: random_linear_ssm(2, 4, state_dim=1, input_dim=1, output_dim=0, generator=0), ValueError, r"output_dim must be >= 1; got 0"),
    (lambda: random_linear_ssm(2, 4, state_dim=1, input_dim=1, output_dim=1, generator=0, scale=-1.0), ValueError, r"scale must lie in \(0.0, inf\]"),
    (lambda: random_linear_ssm(2, 4, state_dim=1, input_dim=1, output_dim=1, generator=None), TypeError, r"generator must be a torch.Generator or an int seed; got NoneType"),
    (lambda: M.states(torch.zeros(1, 5, dtype=torch.long)), ValueError, r"prefixes must have length <= 4 \(the horizon\); got length 5"),
    (lambda: M.logits([[0, 3]]), ValueError, r"prefixes must hold token ids in \[0, 3\); got id 3"),
    (lambda: M.distribution(max_sequences=10), ValueError, r"V\*\*T = 3\*\*4 = 81 sequences, more than max_sequences=10"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD_CALLS, ids=[f"bad{i}" for i in range(len(BAD_CALLS))])
def test_bad_calls_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
