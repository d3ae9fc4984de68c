"""Algorithms 2–3 of paper A (learn_isan, complete_span) and the Lemma C.3 construction."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logitrank.algorithms import (
    QueryCache,
    RankExceededError,
    RankMarginWarning,
    SpanningSets,
    complete_span,
    default_n_samples,
    fit_isan_mle,
    isan_from_spanning_sets,
    learn_isan,
    level_logit_matrix,
    logit_matrix,
    numerical_rank,
)
from logitrank.synth import CountingOracle, all_sequences, perturbed, random_isan
from logitrank.synth.strategies import isans, noisy_parities
from logitrank.verify import tv_distance, tv_monte_carlo

# learners' float decisions (ranks, spans) and distributions against the model: .ci/run reruns these on other BLAS kernels
pytestmark = pytest.mark.numerics

# The learned ISAN solves least-squares systems whose condition numbers stay below ~1e4 for these
# sizes, so float64 rounding (1e-16) leaves TV below ~1e-12; 1e-9 is a wide but meaningful bound
# (a missed direction gives TV of order 1e-2 or more).
TV_TOL = 1e-9


@settings(max_examples=15)
@given(isans(max_vocab_size=3, max_horizon=5, max_hidden_dim=3), st.integers(0, 2**16))
def test_learned_isan_has_the_same_distribution_within_dT_rounds(model, seed):
    learned, report = learn_isan(model, epsilon=0.2, generator=seed)
    assert tv_distance(model.distribution(), learned.distribution()) <= TV_TOL
    d, T = model.hidden_dim, model.horizon
    assert report.rounds <= d * T + 1  # Lemma C.17, plus the final clean round
    assert report.hidden_dim <= d + 1  # the initial row of a level may be dependent
    assert report.queries > 0 and report.samples == report.rounds * report.n_samples


@settings(max_examples=5)
@given(isans(min_vocab_size=3, max_vocab_size=4, min_horizon=6, max_horizon=7, min_hidden_dim=2, max_hidden_dim=4))
def test_learned_logits_match_on_fresh_prefixes(model):
    """Beyond enumeration: logits of the learned model on prefixes sampled from the truth."""
    learned, _ = learn_isan(model, epsilon=0.3, generator=1)
    prefixes = model.sample(200, generator=2)
    for t in range(model.horizon):
        torch.testing.assert_close(learned.logits(prefixes[:, :t]), model.logits(prefixes[:, :t]), rtol=1e-7, atol=1e-8)


def test_T2_spanning_histories_from_the_full_level_give_the_same_distribution():
    """Lemma C.3: pick d spanning rows of L(Σ^t, Σ^{<T−t}) at each level, build the ISAN, compare."""
    model = random_isan(3, 5, 3, generator=4)
    V, T = 3, 5
    H, F = [], []
    for t in range(T):
        L = level_logit_matrix(model, t).double()
        rows = all_sequences(V, t).tolist()
        # greedy: keep a row when it raises the rank
        chosen = []
        for i in range(len(rows)):
            if numerical_rank(L[chosen + [i]]) > len(chosen):
                chosen.append(i)
        H.append([tuple(rows[i]) for i in chosen])
        futures = [()] + [tuple(f) for k in range(1, T - t) for f in all_sequences(V, k).tolist()]
        F.append(futures)
    built = isan_from_spanning_sets(model, H, F)
    assert built.hidden_dim == 3
    assert tv_distance(model.distribution(), built.distribution()) <= TV_TOL


def test_complete_span_invariants_and_query_cache():
    model = random_isan(3, 6, 3, generator=0)
    counter = CountingOracle(model)
    cache = QueryCache(counter)
    sets = SpanningSets.initial(6)
    complete_span(cache, sets, n_samples=300, generator=torch.Generator().manual_seed(0),
                  rank_tol=1e-8, max_rank=8, max_rounds=50)
    for t in range(1, 6):
        rank = numerical_rank(logit_matrix(model, sets.histories[t], sets.futures[t]))
        assert len(sets.histories[t]) - rank in (0, 1)  # Lemma C.17's invariant
        # One future brings V columns, so it can carry up to V−1 ranks: |F_t| ≤ |H_t|, not ≈ rank.
        assert len(sets.futures[t]) <= len(sets.histories[t])
    assert cache.hits > 0 and counter.queries < cache.requests + counter.samples * 6 * 100


def test_rank_above_max_rank_is_an_explicit_error():
    with pytest.raises(RankExceededError, match=r"more than max_rank=2: the model's logit rank exceeds max_rank"):
        learn_isan(random_isan(4, 5, 4, generator=0), epsilon=0.2, max_rank=2, generator=0)


def test_same_seed_same_learner():
    model = random_isan(3, 5, 2, generator=3)
    a, ra = learn_isan(model, epsilon=0.2, generator=5)
    b, rb = learn_isan(model, epsilon=0.2, generator=5)
    # exact: the same seeded queries and the same computation, rerun in one process
    assert torch.equal(a.A, b.A) and ra.additions == rb.additions and ra.queries == rb.queries


def test_default_n_samples_meets_the_union_bound():
    N = default_n_samples(10, 0.1, 0.05, 4)
    assert 4 * 100 * (1 - 0.1 / 20) ** N <= 0.05 < 4 * 100 * (1 - 0.1 / 20) ** (N - 1)


BAD = [
    ({"epsilon": 0.0}, ValueError, r"epsilon must lie in \(0.0, 1.0\); got 0.0"),
    ({"epsilon": 0.1, "delta": 1.0}, ValueError, r"delta must lie in \(0.0, 1.0\); got 1.0"),
    ({"epsilon": 0.1, "rank_tol": -1.0}, ValueError, r"rank_tol must lie in \(0.0, 1.0\); got -1.0"),
    ({"epsilon": 0.1, "max_rank": 0}, ValueError, r"max_rank must be >= 1; got 0"),
    ({"epsilon": 0.1, "n_samples": -3}, ValueError, r"n_samples must be >= 0; got -3"),
    ({"epsilon": 0.1, "generator": None}, TypeError, r"generator must be a torch.Generator or an int seed"),
]


@pytest.mark.parametrize("kwargs, exc, pattern", BAD)
def test_bad_calls(kwargs, exc, pattern):
    kwargs = {"generator": 0, **kwargs}
    with pytest.raises(exc, match=pattern):
        learn_isan(random_isan(2, 3, 1, generator=0), **kwargs)


def test_isan_from_spanning_sets_bad_calls():
    m = random_isan(2, 3, 1, generator=0)
    with pytest.raises(ValueError, match=r"histories\[0\] must be \[\(\)\]"):
        isan_from_spanning_sets(m, [[(0,)], [(0,)], [(0, 0)]], [[()], [()], [()]])
    with pytest.raises(ValueError, match=r"futures\[1\] must contain the empty future"):
        isan_from_spanning_sets(m, [[()], [(0,)], [(0, 0)]], [[()], [(1,)], [()]])
    with pytest.raises(ValueError, match=r"one history set and one future set per level"):
        isan_from_spanning_sets(m, [[()]], [[()]])


@settings(max_examples=4)
@given(noisy_parities(min_n_bits=10, max_n_bits=24))
def test_noisy_parity_is_learned_exactly_from_queries(model):
    """T7's query side: Monte-Carlo TV (Hoeffding 99% half-width 0.016 at 10k samples) is 0 up
    to rounding because the learned model is exact; the learned dim is the centred rank 1."""
    learned, report = learn_isan(model, epsilon=0.2, max_rank=4, generator=0)
    tv, _ = tv_monte_carlo(model, learned, 10000, generator=1)
    assert tv <= 1e-9
    assert report.rounds == 2 and report.hidden_dim == 1


def test_mle_learner_fits_a_small_isan_and_validates():
    truth = random_isan(2, 3, 1, generator=0)
    fitted, rep = fit_isan_mle(truth.sample(4000, generator=1), vocab_size=2, hidden_dim=1, steps=150,
                               restarts=2, generator=0)
    assert len(rep.final_nll) == 2 and rep.final_nll[rep.best_restart] == min(rep.final_nll)
    # 4000 samples of an 8-outcome distribution: the fitted TV is dominated by sampling error (~0.02).
    assert tv_distance(truth.distribution(), fitted.distribution()) < 0.06
    with pytest.raises(ValueError, match=r"samples must hold token ids in \[0, 2\); got id 2"):
        fit_isan_mle(torch.tensor([[0, 2]]), vocab_size=2, hidden_dim=1, generator=0)
    with pytest.raises(ValueError, match=r"steps must be >= 1; got 0"):
        fit_isan_mle(torch.tensor([[0, 1]]), vocab_size=2, hidden_dim=1, steps=0, generator=0)


@pytest.mark.parametrize("xi", [1e-6, 1e-4])
def test_noisy_oracle_learned_tv_tracks_the_noise(xi):
    """An oracle whose logits carry a bounded error ξ (synth.perturbed): with rank_tol above the
    noise the learner keeps the true rank and its TV is of the order of ξ (measured ≈ 1.1·ξ)."""
    model = random_isan(3, 6, 3, generator=0)
    learned, report = learn_isan(perturbed(model, xi, generator=0), epsilon=0.2, rank_tol=1e-3, generator=0)
    assert report.hidden_dim == 3
    assert tv_distance(model.distribution(), learned.distribution()) <= 10 * xi


def test_noisy_oracle_with_a_too_small_rank_tol_gives_a_clear_diagnostic():
    noisy = perturbed(random_isan(3, 6, 3, generator=0), 1e-4, generator=0)
    with pytest.raises(RankExceededError, match=r"raise rank_tol if the oracle is noisy"):
        learn_isan(noisy, epsilon=0.2, rank_tol=1e-8, max_rank=8, generator=0)


def test_noise_at_the_tolerance_is_flagged_not_silent():
    """X3's finding: with ξ = rank_tol·scale the learner can keep noise directions (here dim 6 for
    d = 3); the weakest kept direction clears the tolerance by < 10×, so it warns."""
    noisy = perturbed(random_isan(3, 6, 3, generator=0), 1e-2, generator=0)
    with pytest.warns(RankMarginWarning, match=r"learned dimension \d+ is sensitive to rank_tol"):
        _, report = learn_isan(noisy, epsilon=0.2, rank_tol=1e-2, max_rank=6, generator=0)
    assert report.rank_margin < 10
    _, clean = learn_isan(random_isan(3, 6, 3, generator=0), epsilon=0.2, generator=0)
    assert clean.rank_margin > 1e3
