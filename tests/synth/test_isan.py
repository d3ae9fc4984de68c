"""TimeVaryingISAN (paper A, Def 4.2), random_isan, and Facts C.2 / C.4 as properties."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from logitrank.algorithms import generic_level_rank, level_ranks
from logitrank.synth import ISAN, TimeVaryingISAN, all_sequences, random_isan
from logitrank.synth.strategies import isans
from logitrank.verify import tv_distance

EPS64 = torch.finfo(torch.float64).eps

# float results compared across code paths (recurrence, enumeration, factorised blocks, step
# strategies): .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def hand_isan():
    """d = 1, V = 2, T = 2: step 1 scores (0, log 3) → Pr[z1 = 1] = 3/4; after token z the state is
    multiplied by (1, 2)[z]; step 2 scores (0, x·log 2) → Pr[z2 = 1 | z1 = 1] = 4/5, | z1 = 0 → 2/3."""
    A = torch.tensor([[[[1.0]], [[2.0]]], [[[1.0]], [[1.0]]]], dtype=torch.float64)  # (2, 2, 1, 1)
    B = torch.tensor([[[0.0], [math.log(3)]], [[0.0], [math.log(2)]]], dtype=torch.float64)  # (2, 2, 1)
    return TimeVaryingISAN(A, B, torch.ones(1, dtype=torch.float64))


def test_hand_worked_distribution_and_logits():
    m = hand_isan()
    expected = torch.tensor([1 / 4 * 1 / 3, 1 / 4 * 2 / 3, 3 / 4 * 1 / 5, 3 / 4 * 4 / 5], dtype=torch.float64)
    torch.testing.assert_close(m.distribution(), expected, rtol=0, atol=1e-15)
    half = math.log(3) / 2
    torch.testing.assert_close(m.logits(torch.zeros(1, 0, dtype=torch.long)), torch.tensor([[-half, half]], dtype=torch.float64))
    torch.testing.assert_close(m.log_prob([[1, 1]]), torch.tensor([math.log(0.6)], dtype=torch.float64))
    torch.testing.assert_close(m.states([[1]])[0], torch.tensor([[1.0], [2.0]], dtype=torch.float64))


@given(isans())
def test_logits_are_mean_centred_and_match_probabilities(model):
    # float64 throughout: every identity below holds to a few ulps of the logit scale (~1).
    t = model.horizon - 1
    prefixes = model.sample(6, generator=0)[:, :t]
    logits, logp = model.logits(prefixes), model.log_probs(prefixes)
    assert logits.shape == (6, model.vocab_size)
    torch.testing.assert_close(logits.sum(-1), torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.softmax(logits, -1), logp.exp(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(logits, logp - logp.mean(-1, keepdim=True), rtol=0, atol=1e-12)


@given(isans(max_horizon=4))
def test_distribution_matches_log_prob_and_sums_to_one(model):
    seqs = all_sequences(model.vocab_size, model.horizon)
    p = model.distribution()
    assert abs(float(p.sum()) - 1) < 1e-12
    torch.testing.assert_close(model.log_prob(seqs).exp(), p, rtol=1e-12, atol=1e-15)


@given(isans(max_horizon=4))
def test_log_prob_is_sum_of_next_token_log_probs(model):
    seqs = model.sample(5, generator=1)
    total = sum(model.log_probs(seqs[:, :t]).gather(1, seqs[:, t : t + 1]).squeeze(1) for t in range(model.horizon))
    torch.testing.assert_close(model.log_prob(seqs), total, rtol=1e-12, atol=1e-12)


@given(isans(max_horizon=4), st.integers(0, 2**31 - 1))
def test_prefix_log_prob_is_the_marginal(model, seed):
    """log_prob of a prefix of length t equals log Σ over completions (here: summed from distribution())."""
    t = model.horizon - 1
    prefix = model.sample(1, generator=seed)[:, :t]
    p = model.distribution().reshape([model.vocab_size] * model.horizon)
    marginal = p[tuple(prefix[0].tolist())].sum()
    torch.testing.assert_close(model.log_prob(prefix).exp()[0], marginal, rtol=1e-12, atol=1e-15)


@given(isans(max_vocab_size=3, max_horizon=4), st.integers(0, 2**31 - 1))
def test_samples_follow_the_distribution(model, seed):
    """Chi-square goodness of fit of 4000 samples against distribution(); cells with expected
    count < 5 are pooled. Threshold p < 1e-6: the false-alarm rate per drawn model is 1e-6."""
    n = 4000
    seqs = model.sample(n, generator=seed)
    V, T = model.vocab_size, model.horizon
    index = (seqs * (V ** torch.arange(T - 1, -1, -1))).sum(1)
    counts = np.bincount(index.numpy(), minlength=V**T).astype(float)
    expected = model.distribution().numpy() * n
    small = expected < 5
    if small.any():
        counts = np.append(counts[~small], counts[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    if len(counts) < 2:
        return
    assert stats.chisquare(counts, expected).pvalue > 1e-6


def test_same_seed_same_samples_and_generator_state_advances():
    m = random_isan(5, 6, 3, generator=0)
    a = m.sample(50, generator=7)
    # exact (with g below too): integer tokens drawn by the same computation (same model, same n)
    # from the same stream
    assert torch.equal(a, m.sample(50, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(a, m.sample(50, generator=8))
    g = torch.Generator().manual_seed(7)
    assert torch.equal(m.sample(50, generator=g), a)
    assert not torch.equal(m.sample(50, generator=g), a)  # the generator moved on


def test_random_isan_is_reproducible_and_device_dtype_independent():
    a = random_isan(3, 4, 2, generator=3)
    b = random_isan(3, 4, 2, generator=3, dtype=torch.float32)
    assert torch.equal(a.A, random_isan(3, 4, 2, generator=3).A)  # exact: the same draws and QR, rerun
    assert b.dtype == torch.float32 and b.A.dtype == torch.float32
    torch.testing.assert_close(b.A.double(), a.A, rtol=0, atol=1e-7)
    torch.testing.assert_close(b.distribution().double(), a.distribution(), rtol=0, atol=1e-5)


@given(isans(max_vocab_size=3, max_horizon=6, max_hidden_dim=5))
def test_T1_level_ranks_at_most_d_and_generic(model):
    """Fact C.4: rank ≤ d; for random_isan draws exactly min(d, V^t, V^(T−t) − 1) (float64 SVD,
    tolerance eps·max(m, n)·σ_max)."""
    V, T, d = model.vocab_size, model.horizon, model.hidden_dim
    ranks = level_ranks(model)
    assert max(ranks) <= d
    assert ranks == [generic_level_rank(V, T, d, t) for t in range(T)]


@given(isans(max_horizon=4))
def test_T3_time_invariant_isan_has_the_same_distribution(model):
    """Fact C.2: tolerance 100·T·eps (products of T softmax factors, each exact to a few ulps)."""
    ti = model.to_time_invariant()
    assert isinstance(ti, ISAN) and ti.hidden_dim == model.horizon * model.hidden_dim
    assert tv_distance(model.distribution(), ti.distribution()) <= 100 * model.horizon * EPS64
    seqs = model.sample(8, generator=0)
    torch.testing.assert_close(ti.log_prob(seqs), model.log_prob(seqs), rtol=1e-12, atol=1e-12)


def test_states_are_consistent_with_logits():
    m = random_isan(4, 5, 3, generator=2)
    p = m.sample(10, generator=0)[:, :3]
    xs = m.states(p)
    assert xs.shape == (10, 4, 3)
    torch.testing.assert_close(xs[:, 0], m.x0.expand(10, -1))
    scores = xs[:, -1] @ m.B[3].T
    torch.testing.assert_close(m.logits(p), scores - scores.mean(-1, keepdim=True))


def test_float32_model_runs_and_stays_float32():
    m = random_isan(3, 4, 2, generator=0, dtype=torch.float32)
    assert m.logits([[0, 1]]).dtype == torch.float32
    assert m.log_prob([[0, 1, 2, 0]]).dtype == torch.float32
    assert m.to(dtype=torch.float64).dtype == torch.float64


def test_empty_batch_and_empty_prefix():
    m = random_isan(3, 4, 2, generator=0)
    assert m.logits(torch.zeros(0, 2, dtype=torch.long)).shape == (0, 3)
    assert m.sample(0, generator=0).shape == (0, 4)
    assert m.logits(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 3)
    assert m.sample(3, generator=0, length=2).shape == (3, 2)


def test_distribution_refuses_large_enumeration():
    m = random_isan(4, 11, 2, generator=0)
    with pytest.raises(ValueError, match=r"V\*\*T = 4\*\*11 = 4194304 sequences, more than max_sequences=1048576"):
        m.distribution()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on the GPU machine)")
def test_cuda_matches_cpu():
    m = random_isan(5, 6, 4, generator=0)
    g = m.to(device="cuda")
    p = m.sample(20, generator=0)
    torch.testing.assert_close(g.logits(p[:, :4].cuda()).cpu(), m.logits(p[:, :4]))
    torch.testing.assert_close(g.log_prob(p.cuda()).cpu(), m.log_prob(p))
    assert g.sample(5, generator=0).device.type == "cuda"


@pytest.mark.parametrize(
    "tokens",
    [
        torch.tensor([2, 0]),  # batch smaller than V: gathered
        torch.randint(5, (300,), generator=torch.Generator().manual_seed(0)),  # even groups: grouped
        torch.tensor([3] * 290 + [0, 1, 2, 4] * 2 + [1, 1]),  # one dominant token: per token
    ],
    ids=["gathered", "grouped", "per-token"],
)
@pytest.mark.parametrize("d", [4, 8], ids=["all-candidates", "by-shape"])  # V·d = 20 <= 32 < 40
def test_every_step_strategy_is_exact(tokens, d):
    m = random_isan(5, 3, d, generator=0)
    x = torch.randn(len(tokens), d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = torch.einsum("bij,bj->bi", m.A[1][tokens], x)
    torch.testing.assert_close(m._step(x, tokens, 1), expected, rtol=1e-14, atol=1e-14)


def test_logit_block_matches_logits_for_lists_and_tensors():
    m = random_isan(4, 7, 3, generator=0)
    H = m.sample(6, generator=1)[:, :3]
    F = [(), (1,), (2, 3)]
    block = m.logit_block(H, F)  # (6, 3, 4) from a tensor of one length
    # exact: the six tuples of one length are stacked into the same (6, 3) token table, so the states,
    # the maps and the matmul are the same computation as for the tensor
    torch.testing.assert_close(m.logit_block([tuple(h) for h in H.tolist()], F), block, rtol=0, atol=0)
    for j, f in enumerate(F):
        prefixes = torch.cat([H, torch.tensor(f, dtype=torch.long).expand(6, len(f))], dim=1)
        torch.testing.assert_close(block[:, j], m.logits(prefixes), rtol=1e-12, atol=1e-13)
