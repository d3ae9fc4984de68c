"""Logits from conditional samples (algorithms/_sample_logits.py)."""

import math

import numpy as np
import pytest
import torch

from logitrank.algorithms import SampleLogitOracle, estimate_logits, learn_isan, logit_error, samples_per_logit
from logitrank.synth import CountingOracle, LanguageModel, random_isan


def test_rule_by_hand():
    """N = ⌈3·V·e^{2λ}·ln(2V/δ) / (1 − e^{−ξ/2})²⌉ worked out for V=2, λ=0, ξ=1, δ=0.5."""
    want = math.ceil(3 * 2 * math.log(8) / (1 - math.exp(-0.5)) ** 2)
    assert samples_per_logit(1.0, 0.0, 2, delta=0.5) == want


def test_rule_scales_as_e_to_2_lambda_and_inverts():
    r = samples_per_logit(0.1, 3.0, 4) / samples_per_logit(0.1, 2.0, 4)
    assert r == pytest.approx(math.e**2, rel=1e-5)
    for n in (10**4, 10**7):
        xi = logit_error(n, 1.5, 4)
        assert samples_per_logit(xi * (1 + 1e-9), 1.5, 4) <= n <= samples_per_logit(xi * (1 - 1e-6), 1.5, 4)
    assert logit_error(1, 1.0, 4) == math.inf


def test_rule_is_an_upper_bound_in_practice():
    """At the rule's N, the fraction of estimates missing some centred logit by > ξ is at most δ."""
    lam, V, xi, delta = 2.0, 4, 0.2, 0.1
    L = torch.tensor([-lam, -lam, lam, lam], dtype=torch.float64)
    p = torch.softmax(L, 0).numpy()
    counts = torch.from_numpy(np.random.default_rng(0).multinomial(samples_per_logit(xi, lam, V, delta=delta), p, size=300))
    miss = float(((estimate_logits(counts) - L).abs().max(1).values > xi).double().mean())
    assert miss <= delta


def test_estimate_logits_by_hand():
    est = estimate_logits(torch.tensor([[3, 1]]), pseudocount=0.0)
    assert torch.allclose(est, torch.tensor([[0.5 * math.log(3), -0.5 * math.log(3)]], dtype=torch.float64))
    assert torch.allclose(estimate_logits(torch.tensor([[1, 0]])), torch.tensor([[0.5 * math.log(3), -0.5 * math.log(3)]],
                                                                                 dtype=torch.float64))


@pytest.mark.numerics  # float logits of batches of 3 and 1 compared: .ci/run reruns it on other kernels
def test_oracle_protocol_determinism_and_counting():
    m = random_isan(3, 4, 2, generator=0)
    o = SampleLogitOracle(m, 1000, seed=7)
    assert isinstance(o, LanguageModel) and not hasattr(o, "logit_block")
    pre = torch.tensor([[0, 1], [2, 2], [0, 1]])
    a = o.logits(pre)
    alone = o.logits(pre[1:2])
    assert o.logit_samples == 4 * 1000
    # Same prefix, same draws; batching does not matter. The draws are integer counts from a numpy
    # generator seeded by (seed, prefix): exact. (Their probabilities come from a batch of 3 or of 1,
    # equal to rounding only; a count could move only if a uniform fell within ~1e-16 of a binomial
    # step: odds ~1e-13.) A fresh oracle checks them, leaving o's accounting alone.
    counts = SampleLogitOracle(m, 1000, seed=7).counts(pre)
    assert torch.equal(counts[0], counts[2])
    assert torch.equal(SampleLogitOracle(m, 1000, seed=7).counts(pre[1:2]), counts[1:2])
    # The logits log(c + 1/2) − row mean of a (3, V) and a (1, V) tensor are not promised bitwise
    # equal: with another torch version or CPU capability a row can fall in a vectorised loop body or
    # in a scalar tail (SLEEF and libm log differ by an ulp at some inputs, e.g. log(54731.5)), and the
    # row mean's summation follows the shape. Each log is within 1 ulp, the mean adds a few: 8 ulps of
    # the largest |log(c + 1/2)| <= log(1000.5) ≈ 6.9 (≈ 1.2e-14). One count more or less moves a
    # logit by >= 1/1000.
    tol = 8 * torch.finfo(torch.float64).eps * math.log(1000.5)
    torch.testing.assert_close(a[2], a[0], rtol=0, atol=tol)
    torch.testing.assert_close(alone, a[1:2], rtol=0, atol=tol)
    seqs = o.sample(5, generator=0)
    assert o.sequence_samples == seqs.numel() and o.samples == 4000 + seqs.numel()
    assert torch.allclose(a.sum(1), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert not torch.equal(SampleLogitOracle(m, 1000, seed=8).logits(pre), a)
    with pytest.raises(NotImplementedError, match="only samples"):
        o.log_prob(seqs)


def test_error_shrinks_like_one_over_root_n():
    m = random_isan(3, 4, 2, generator=1)
    pre = torch.tensor([[0], [1], [2]])
    errs = [float((SampleLogitOracle(m, n, seed=0).logits(pre) - m.logits(pre)).abs().max()) for n in (10**4, 10**8)]
    assert errs[1] < errs[0] / 30  # 1/√N predicts /100; leave room for the draw


def test_exact_learner_on_conditional_samples():
    """Planted recovery: with 10^7 draws per logit the exact learner gets within TV 0.01 of the truth."""
    m = random_isan(3, 5, 2, generator=0)
    xi = logit_error(10**7, 2.0, 3, delta=0.5)
    learned, rep = learn_isan(CountingOracle(SampleLogitOracle(m, 10**7, seed=0)), epsilon=0.1,
                              rank_tol=0.1 * xi, max_rank=4, generator=0)
    assert rep.hidden_dim == 2
    assert 0.5 * float((m.distribution() - learned.distribution()).abs().sum()) < 0.01


_M = random_isan(3, 4, 2, generator=0)


@pytest.mark.parametrize("call, error, match", [
    (lambda: samples_per_logit(0.0, 1.0, 3), ValueError, "xi must lie in"),
    (lambda: samples_per_logit(0.1, -1.0, 3), ValueError, "logit_range must lie in"),
    (lambda: samples_per_logit(0.1, 1.0, 1), ValueError, "vocab_size must be >= 2"),
    (lambda: samples_per_logit(0.1, 1.0, 3, delta=1.0), ValueError, "delta must lie in"),
    (lambda: logit_error(0, 1.0, 3), ValueError, "n_samples must be >= 1"),
    (lambda: estimate_logits(torch.tensor([1, 2])), ValueError, r"counts must be a \(B, V\)"),
    (lambda: estimate_logits(torch.tensor([[1, 0]]), pseudocount=0.0), ValueError, "pseudocount > 0"),
    (lambda: SampleLogitOracle("m", 10, seed=0), TypeError, "LanguageModel protocol"),
    (lambda: SampleLogitOracle(_M, 0, seed=0), ValueError, "n_samples must be >= 1"),
    (lambda: SampleLogitOracle(_M, 10, seed=-1), ValueError, "seed must be >= 0"),
    (lambda: SampleLogitOracle(_M, 10, seed=np.int64(3)).logits(torch.tensor([[5]])), ValueError, "token ids"),
])
def test_bad_calls(call, error, match):
    with pytest.raises(error, match=match):
        call()
