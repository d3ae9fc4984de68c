"""logit_matrix (paper A, Def 2.2): layout, mixed lengths, rank, errors."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from logitrank.algorithms import level_logit_matrix, logit_matrix, numerical_rank
from logitrank.synth import CountingOracle, random_isan
from logitrank.synth.strategies import isans

# float results compared across code paths: .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def test_entries_are_logits_of_concatenations_future_major():
    m = random_isan(3, 6, 2, generator=0)
    H = [(), (2,), (0, 1)]
    F = [(), (1, 1), (2,)]
    L = logit_matrix(m, H, F)
    assert L.shape == (3, 9)
    for i, h in enumerate(H):
        for j, f in enumerate(F):
            expected = m.logits(torch.tensor([h + f], dtype=torch.long).reshape(1, -1))[0]
            # exact: H and F have distinct lengths, so every (len h, len f) group of the generic path is
            # this one cell, sent to m.logits as the same (1, len h + len f) prefix: the same computation
            torch.testing.assert_close(L[i, 3 * j : 3 * j + 3], expected, rtol=0, atol=0)


def test_tensor_input_and_batching_agree():
    m = random_isan(4, 7, 3, generator=1)
    H = m.sample(9, generator=0)[:, :3]
    F = m.sample(5, generator=1)[:, :2]
    full = logit_matrix(m, H, F)
    # a different batch size may change the BLAS kernel and so the last bit (seen on some CPUs):
    # float64 agreement to 1e-14 is the stated tolerance
    torch.testing.assert_close(logit_matrix(m, H, F, batch_size=4), full, rtol=0, atol=1e-14)
    # exact: the list input is converted to the same (9, 3) and (5, 2) token tables and takes the
    # same batches, so every m.logits call is the same computation on the same prefixes
    torch.testing.assert_close(logit_matrix(m, H.tolist(), [tuple(f) for f in F.tolist()]), full, rtol=0, atol=0)


def test_one_query_per_cell():
    oracle = CountingOracle(random_isan(3, 6, 2, generator=0))
    logit_matrix(oracle, [(), (1,), (2, 2)], [(), (0,)])
    assert oracle.queries == 6


@given(isans(max_horizon=6, max_hidden_dim=4), st.integers(0, 1000))
def test_rank_at_most_d_for_any_histories_of_one_length(model, seed):
    """Fact C.4 for arbitrary sampled H (one length t) and F of mixed lengths."""
    T = model.horizon
    if T < 2:
        return
    seqs = model.sample(12, generator=seed).tolist()
    cut = 1 + seed % (T - 1)
    H = [tuple(s[:cut]) for s in seqs]
    F = [tuple(s[cut : cut + i % (T - cut)]) for i, s in enumerate(seqs)]
    assert numerical_rank(logit_matrix(model, H, F)) <= model.hidden_dim


@given(isans(min_horizon=3, max_horizon=6, max_hidden_dim=3), st.integers(0, 1000))
def test_mixed_history_lengths_can_exceed_d_but_not_d_times_lengths(model, seed):
    """A *time-varying* ISAN reads futures through step-dependent maps, so histories of L distinct
    lengths give rank up to L·d (the time-invariant ISAN of Fact C.2 has dim T·d), not d."""
    T = model.horizon
    seqs = model.sample(20, generator=seed).tolist()
    H = [tuple(s[: 1 + i % (T - 2)]) for i, s in enumerate(seqs)]  # lengths 1 … T−2
    F = [()] + [tuple(s[:1]) for s in seqs[:3]]
    lengths = len({len(h) for h in H})
    assert numerical_rank(logit_matrix(model, H, F)) <= lengths * model.hidden_dim


def test_empty_sets_give_empty_matrices():
    m = random_isan(3, 4, 2, generator=0)
    assert logit_matrix(m, [], [()]).shape == (0, 3)
    assert logit_matrix(m, [()], []).shape == (1, 0)


BAD = [
    (lambda m: logit_matrix(m, [(0, 1, 2)], [(0,)]), ValueError, r"shorter than horizon=4 .* has length 4"),
    (lambda m: logit_matrix(m, [(0, 5)], [()]), ValueError, r"histories\[0\] must hold token ids in \[0, 3\); got id 5"),
    (lambda m: logit_matrix(m, [()], [(0.5,)]), TypeError, r"futures\[0\] must hold int token ids; got 0.5"),
    (lambda m: logit_matrix(m, [()], [3]), ValueError, r"futures\[0\] must be a sequence of token ids; got 3"),
    (lambda m: logit_matrix(m, torch.zeros(2, 1), [()]), ValueError, r"histories given as a tensor must be a \(n, t\) integer tensor"),
    (lambda m: logit_matrix(m, [()], [()], batch_size=0), ValueError, r"batch_size must be >= 1; got 0"),
    (lambda m: level_logit_matrix(m, 4), ValueError, r"t must be <= 3; got 4"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD)
def test_bad_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(random_isan(3, 4, 2, generator=0))


def test_mixed_history_lengths_do_exceed_d_for_a_time_varying_isan():
    m = random_isan(2, 6, 1, generator=0)
    H = [(0,), (1,), (0, 0), (1, 1)]
    F = [(), (0,), (1,)]
    assert numerical_rank(logit_matrix(m, H[:2], F)) == 1
    assert numerical_rank(logit_matrix(m, H, F)) == 2
