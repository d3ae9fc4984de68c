"""The grouped state kernel (synth/_isan_kernel.py, issue 14) against the stepwise route it replaces."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import logitrank.synth._isan as isan_module
from logitrank.synth import random_isan
from logitrank.synth._isan_kernel import _buckets_of, _Plan, grouped_states
from logitrank.synth.strategies import isans

# float results compared across code paths: .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics

# Both routes form the same products x @ A[s, v]ᵀ (dot products of length d); only BLAS blocking
# may differ, so after t steps of unit-norm orthogonal maps they agree to a few hundred ulps.
TOL64 = {"rtol": 0, "atol": 1e-12}


def _prefixes(V, B, t, seed, skew):
    """(B, t) tokens; ``skew`` > 0 draws token v with probability ∝ (v + 1)^−skew (uneven groups)."""
    g = torch.Generator().manual_seed(seed)
    p = torch.arange(1, V + 1, dtype=torch.float64) ** -skew
    return torch.multinomial(p / p.sum(), B * t, replacement=True, generator=g).view(B, t)


@given(isans(min_vocab_size=3, max_vocab_size=9, max_horizon=7, min_hidden_dim=2, max_hidden_dim=6),
       st.integers(1, 300), st.integers(0, 10**6), st.sampled_from([0.0, 1.0, 3.0]))
def test_grouped_states_equal_stepwise(model, B, seed, skew):
    t = model.horizon
    p = _prefixes(model.vocab_size, B, t, seed, skew)
    new = model._final_states(p, method="grouped", keep_all=True)
    old = model._final_states(p, method="stepwise", keep_all=True)
    assert new.shape == (B, t + 1, model.hidden_dim)
    torch.testing.assert_close(new, old, **TOL64)


@pytest.mark.parametrize("skew", [0.0, 1.5, 8.0])
def test_plan_gives_every_row_its_own_slot(skew):
    """From step 2 on, slots of one step are distinct and inside the buffer; each slot reads its row's
    previous slot; the batched matmuls cover the buffer exactly."""
    V, B, t = 17, 500, 6
    p = _prefixes(V, B, t, 3, skew)
    plan = _Plan(p, V, tolerance=0.15)
    # exact (here and below): integer slot and source tables, no floats
    torch.testing.assert_close(plan.slot[0].long(), p[:, 0], rtol=0, atol=0)  # step 1: the table of V first states
    for s in range(1, t):
        slots = plan.slot[s]
        assert len(set(slots.tolist())) == B and int(slots.max()) < plan.sizes[s]
    for s in range(1, t):
        torch.testing.assert_close(plan.src[s - 1][plan.slot[s].long()], plan.slot[s - 1], rtol=0, atol=0)
        covered = sum(n * m for _, _, n, m in plan.calls[s])
        assert covered == plan.sizes[s] >= B


def test_buckets_pad_within_tolerance():
    left = np.array([0, 9, 10, 3, 3, 1, 30, 29, 0, 2])
    buckets = _buckets_of(left, 0.15)
    toks = sorted(int(v) for b, _ in buckets for v in b)
    assert toks == [int(v) for v in np.flatnonzero(left)]  # every token with rows, once
    for b, m in buckets:
        assert m == left[b].max() and m * len(b) <= 1.15 * left[b].sum() + m  # one token's worth of slack


def test_all_prefixes_one_token_and_chunking(monkeypatch):
    m = random_isan(6, 5, 4, generator=0)
    p = torch.full((40, 4), 2, dtype=torch.long)
    torch.testing.assert_close(m._final_states(p, method="grouped"), m._final_states(p, method="stepwise"), **TOL64)
    q = _prefixes(6, 90, 4, 1, 0.5)
    whole = m._final_states(q, method="grouped")
    monkeypatch.setattr(isan_module, "STATE_CHUNK", 7)
    torch.testing.assert_close(m._final_states(q, method="grouped"), whole, **TOL64)  # other groups, other blocking


def test_logits_take_the_grouped_route_and_match_stepwise():
    """logits() at a benchmark-like shape (auto → grouped) equals the stepwise readout."""
    m = random_isan(64, 9, 16, generator=2)
    p = _prefixes(64, 2000, 8, 4, 0.7)
    old = m._final_states(p, method="stepwise") @ m.B[8].T
    torch.testing.assert_close(m.logits(p), old - old.mean(1, keepdim=True), **TOL64)


def test_float32_and_bfloat16_follow_float64():
    m64 = random_isan(32, 7, 8, generator=5)
    p = _prefixes(32, 400, 6, 6, 0.0)
    ref = m64.logits(p)
    for dtype, atol in ((torch.float32, 1e-4), (torch.bfloat16, 0.15)):
        got = m64.to(dtype=dtype).logits(p)
        assert got.dtype == dtype
        torch.testing.assert_close(got.double(), ref, rtol=0, atol=atol)


def test_grouped_states_empty_inputs():
    m = random_isan(5, 4, 3, generator=0)
    assert grouped_states(m, torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3)
    torch.testing.assert_close(grouped_states(m, torch.zeros(4, 0, dtype=torch.long)), m.x0.expand(4, 3))


def test_bad_method():
    m = random_isan(5, 4, 3, generator=0)
    with pytest.raises(ValueError, match="method must be 'auto', 'grouped' or 'stepwise'; got 'fast'"):
        m._final_states(torch.zeros(2, 2, dtype=torch.long), method="fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on the GPU machine)")
def test_cuda_grouped_states_match_cpu():
    m = random_isan(64, 9, 16, generator=2)
    p = _prefixes(64, 5000, 8, 4, 0.7)
    g = m.to(device="cuda")
    torch.testing.assert_close(g._final_states(p.cuda(), method="grouped").cpu(),
                               m._final_states(p, method="stepwise"), **TOL64)
    torch.testing.assert_close(g.logits(p.cuda()).cpu(), m.logits(p), **TOL64)


@pytest.mark.parametrize("V", [300, 2**16 + 3])
def test_wide_vocabularies_take_16_and_64_bit_keys(V):
    """The plan sorts 8-bit keys for V ≤ 256, 16-bit up to 2¹⁶ and int64 beyond; all give the stepwise states."""
    m = random_isan(V, 4, 2, generator=1)
    p = _prefixes(V, 700, 3, 2, 1.0)
    torch.testing.assert_close(m._final_states(p, method="grouped", keep_all=True),
                               m._final_states(p, method="stepwise", keep_all=True), **TOL64)
