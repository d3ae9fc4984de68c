"""Lemma C.18 / Corollary C.19 quantities (algorithms/_lingen_bound.py)."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from logitrank.algorithms import (
    corollary_c19_bound,
    future_grams,
    lingen_bound,
    lingen_distributions,
    logit_matrix,
    max_abs_logit,
)
from logitrank.synth import all_sequences, random_isan
from logitrank.synth.strategies import isans

# float bounds checked against the model's own values: .ci/run reruns these on other BLAS kernels
pytestmark = pytest.mark.numerics

TOL = 1e-10  # float64 sums of at most a few hundred terms


def _kl(p, q):
    mask = p > 0
    return float((p[mask] * (p[mask].log() - q[mask].log())).sum())


def test_k1_by_hand():
    """k = 1: P1 = P2 = the empty future, so G1 = G2 and φ(a) = aΔ + (1−a)₊·λ_max(G1)·(1+‖v‖²)."""
    m = random_isan(3, 4, 3, generator=5)
    h0, H = (0, 2), [(1, 1), (2, 0)]
    g = future_grams(m, h0, H, 1)
    L = logit_matrix(m, [h0] + H, [()])  # (3, V)
    assert torch.allclose(g.G1, L @ L.T, atol=TOL) and torch.allclose(g.G2, g.G1, atol=TOL)
    v = torch.tensor([0.3, -0.7], dtype=torch.float64)
    delta = float(((L[0] - v @ L[1:]) ** 2).sum())
    c = 1 + float(v @ v)
    by_hand = 2 * math.sqrt(min(delta, c * float(torch.linalg.eigvalsh(g.G1)[-1])))  # φ is linear on [0, 1], flat γ=0 after
    b = lingen_bound(g, v)
    assert b.delta == pytest.approx(delta, rel=1e-12)
    assert b.bound == pytest.approx(by_hand, rel=1e-9)


def test_weights_and_truth_match_the_model():
    m = random_isan(2, 6, 3, generator=1)
    h0, H, k = (1, 0), [(0, 0), (1, 1)], 3
    g = future_grams(m, h0, H, k)
    assert float(g.p1.sum()) == pytest.approx(1) and float(g.p2.sum()) == pytest.approx(1)
    truth, _ = lingen_distributions(g, torch.zeros(2, dtype=torch.float64))
    seqs = torch.cat([torch.tensor([h0]).expand(2**k, 2), all_sequences(2, k)], dim=1)  # (2^k, 5)
    direct = (m.log_prob(seqs) - m.log_prob(torch.tensor([h0]))).exp()
    assert torch.allclose(truth, direct, atol=TOL)
    for G in (g.G1, g.G2):
        assert float(torch.linalg.eigvalsh(G)[0]) > -TOL


def test_lingen_with_the_target_itself_is_exact():
    """Planted answer: H = {h0}, v = 1 makes LinGen sample from M, so KL = 0 and Δ = 0."""
    m = random_isan(3, 5, 2, generator=2)
    g = future_grams(m, (1, 2), [(1, 2)], 3)
    truth, lg = lingen_distributions(g, torch.ones(1, dtype=torch.float64))
    assert torch.allclose(truth, lg, atol=TOL)
    assert lingen_bound(g, torch.ones(1, dtype=torch.float64)).delta < TOL


def test_least_squares_v_recovers_a_spanned_target():
    """|H| >= d histories span h0's state for a generic ISAN: Δ ≈ 0 and the bound ≈ 0."""
    m = random_isan(3, 5, 2, generator=3)
    g = future_grams(m, (0, 0), [(1, 2), (2, 1), (0, 1)], 3)
    b = lingen_bound(g, g.least_squares_v())
    truth, lg = lingen_distributions(g, g.least_squares_v())
    assert b.delta < 1e-20 and b.bound < 1e-6 and _kl(truth, lg) < 1e-12


@given(isans(min_horizon=3, max_horizon=5, max_vocab_size=3), st.integers(1, 3), st.floats(0.0, 2.0), st.integers(0, 99))
def test_lemma_c18_and_corollary_c19_hold(model, n, noise, seed):
    """Lemma C.18: KL(truth ‖ LinGen) <= bound for any v; (7) holds; Corollary C.19 for the reverse KL."""
    V, T = model.vocab_size, model.horizon
    ell = 1
    hs = [tuple(h) for h in all_sequences(V, ell).tolist()]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(hs), generator=gen).tolist()
    h0, H = hs[order[0]], [hs[i] for i in order[1 : 1 + n]] or [hs[order[0]]]
    k = min(T - ell, 3)
    g = future_grams(model, h0, H, k)
    v = g.least_squares_v() + noise * torch.randn(len(H), generator=gen, dtype=torch.float64)
    truth, lg = lingen_distributions(g, v)
    for clip in (True, False):
        b = lingen_bound(g, v, clip_gamma=clip)
        assert b.residual_p2 <= b.inner * (1 + 1e-9) + 1e-12  # inequality (7)
        assert _kl(truth, lg) <= b.bound * (1 + 1e-9) + 1e-12
    C = max_abs_logit(model)
    assert _kl(lg, truth) <= corollary_c19_bound(lingen_bound(g, v).inner, k, V, C) * (1 + 1e-9) + 1e-12


def test_unclipped_gamma_is_never_looser():
    m = random_isan(3, 6, 4, generator=4, scale=2.0)
    g = future_grams(m, (0, 1), [(1, 0), (2, 2)], 3)
    v = g.least_squares_v() + 0.5
    assert lingen_bound(g, v, clip_gamma=False).bound <= lingen_bound(g, v).bound * (1 + 1e-12)


def test_max_abs_logit_enumerates_every_history():
    m = random_isan(2, 4, 2, generator=0)
    want = max(float(m.logits(all_sequences(2, t)).abs().max()) for t in range(4))
    assert max_abs_logit(m) == want
    assert max_abs_logit(m, 0) == float(m.logits(torch.zeros(1, 0, dtype=torch.long)).abs().max())


_M = random_isan(3, 5, 2, generator=0)
_G = future_grams(_M, (0, 1), [(1, 1)], 2)


@pytest.mark.parametrize("call, error, match", [
    (lambda: future_grams(_M, (0,), [(1, 1)], 2), ValueError, "share one length"),
    (lambda: future_grams(_M, (0, 1), [], 2), ValueError, "at least one basis history"),
    (lambda: future_grams(_M, (0, 1), [(1, 1)], 4), ValueError, "k must be <= horizon"),
    (lambda: future_grams(_M, (0, 1), [(1, 3)], 2), ValueError, r"token ids in \[0, 3\)"),
    (lambda: future_grams(_M, (0, 1), [(1, 1)], 0), ValueError, "k must be >= 1"),
    (lambda: lingen_bound(_G, torch.ones(2)), ValueError, "v must have n = 1"),
    (lambda: lingen_bound(_G, torch.tensor([float("nan")])), ValueError, "v must be finite"),
    (lambda: lingen_bound(_G, torch.ones(1), alpha_range=(10.0, 1.0)), ValueError, "alpha_range must be increasing"),
    (lambda: lingen_bound(_G, torch.ones(1), alpha_range=(0.0, 1.0)), ValueError, r"alpha_range\[0\]"),
    (lambda: corollary_c19_bound(0.1, 0, 3, 1.0), ValueError, "k must be >= 1"),
    (lambda: corollary_c19_bound(0.1, 1, 3, -1.0), ValueError, "C must lie in"),
])
def test_bad_calls(call, error, match):
    with pytest.raises(error, match=match):
        call()
