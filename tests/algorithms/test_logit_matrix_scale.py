"""logit_matrix at scale: top-k / random-k columns (paper A §3.1, App. A.1.5), the ISAN fast path,
batching under a memory budget, progress bars."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from logitrank.algorithms import (
    LogitMatrix,
    generic_level_rank,
    logit_matrix,
    numerical_rank,
    random_k_columns,
    top_k_columns,
)
from logitrank.synth import CountingOracle, TimeVaryingISAN, all_sequences, random_isan
from logitrank.synth.strategies import isans

# float results compared across code paths (generic, isan) and batchings: .ci/run runs these again on
# other BLAS kernels
pytestmark = pytest.mark.numerics

# Fast and generic paths add the same O(1) products in different orders (orthogonal A, unit x0,
# N(0, 1) readouts), so they differ by a few T·d·eps ≈ 1e-14; 1e-12 leaves a factor 100.
PATH_ATOL = 1e-12


def _swap_isan() -> TimeVaryingISAN:
    """V = 3, d = 2, T = 5: tokens 0 and 2 keep the state, token 1 swaps its two coordinates.

    Readout rows: token 0 → (2, 0), token 1 → (0, 2), token 2 → (1, 1); x0 = (1, 0). So a prefix
    with an even number of 1s has scores (2, 0, 1), an odd number (0, 2, 1).
    """
    T, V, d = 5, 3, 2
    eye, swap = torch.eye(d, dtype=torch.float64), torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    A = torch.stack([eye, swap, eye]).expand(T, V, d, d).clone()
    B = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64).expand(T, V, d).clone()
    return TimeVaryingISAN(A, B, torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_top_k_hand_worked():
    m = _swap_isan()
    F = [(), (1,), (1, 1), (2, 1)]
    # even number of 1s: centred scores (1, −1, 0) → top-2 tokens 0, 2; odd: (−1, 1, 0) → 1, 2
    assert top_k_columns(m, F, 2).tolist() == [[0, 2], [1, 2], [0, 2], [1, 2]]
    res = logit_matrix(m, [(), (1,)], F, top_k=2, return_columns=True)
    assert isinstance(res, LogitMatrix) and res.k == 2
    even, odd = torch.tensor([1.0, -1.0, 0.0]), torch.tensor([-1.0, 1.0, 0.0])
    expected = torch.stack([
        torch.cat([even[[0, 2]], odd[[1, 2]], even[[0, 2]], odd[[1, 2]]]),  # h = ()
        torch.cat([odd[[0, 2]], even[[1, 2]], odd[[0, 2]], even[[1, 2]]]),  # h = (1,) flips parity
    ]).to(torch.float64)
    torch.testing.assert_close(res.values, expected, rtol=0, atol=1e-15)


def test_top_k_ties_go_to_the_smaller_token():
    m = _swap_isan()  # scores (2, 0, 1): no tie; make one with readouts all equal
    flat = TimeVaryingISAN(m.A, torch.ones_like(m.B), m.x0)
    assert top_k_columns(flat, [(), (1,)], 2).tolist() == [[0, 1], [0, 1]]


def test_top_k_are_the_largest_logits_of_the_future_alone():
    m = random_isan(9, 6, 3, generator=4)
    F = [tuple(s) for s in m.sample(12, generator=0)[:, :3].tolist()]
    cols = top_k_columns(m, F, 4)
    for f, c in zip(F, cols):
        logits = m.logits(torch.tensor([f]))[0]
        assert set(c.tolist()) == set(torch.topk(logits, 4).indices.tolist())
        assert (logits[c].diff() <= 0).all()  # kept in decreasing order


def test_random_k_is_seeded_sorted_and_distinct():
    a = random_k_columns(50, 30, 7, generator=3)
    # exact: integer token ids from the same uniform draws (same seed, same shapes)
    assert torch.equal(a, random_k_columns(50, 30, 7, generator=torch.Generator().manual_seed(3)))
    assert not torch.equal(a, random_k_columns(50, 30, 7, generator=4))
    assert (a.diff(dim=1) > 0).all() and a.min() >= 0 and a.max() < 50
    assert random_k_columns(5, 2, 5, generator=0).tolist() == [[0, 1, 2, 3, 4]] * 2


def test_columns_round_trip_and_all_token_default():
    m = random_isan(6, 7, 3, generator=2)
    H, F = [(0,), (5, 1), (2,)], [(), (3,), (1, 4)]
    res = logit_matrix(m, H, F, random_k=3, generator=0, return_columns=True)
    # exact (both here): 9 cells take the generic path, whose m.logits calls are the same batches
    # whatever the columns; the columns only gather entries from those same logits
    torch.testing.assert_close(logit_matrix(m, H, F, columns=res.columns), res.values, rtol=0, atol=0)
    full = logit_matrix(m, H, F, return_columns=True)
    assert full.columns.tolist() == [list(range(6))] * 3
    gathered = full.values.reshape(3, 3, 6).gather(2, res.columns.expand(3, 3, 3)).reshape(3, 9)
    torch.testing.assert_close(gathered, res.values, rtol=0, atol=0)


def _mixed_sets(model, seed):
    """Histories and futures of mixed lengths that fit the horizon."""
    T = model.horizon
    seqs = model.sample(10, generator=seed).tolist()
    H = [tuple(s[: i % max(1, T // 2)]) for i, s in enumerate(seqs)]
    room = T - 1 - max(len(h) for h in H)
    F = [tuple(s[: i % (room + 1)]) for i, s in enumerate(reversed(seqs))]
    return H, F


@given(isans(max_horizon=7, max_vocab_size=5), st.integers(0, 10**6), st.sampled_from([None, 1, 2]))
def test_isan_fast_path_equals_generic(model, seed, k):
    H, F = _mixed_sets(model, seed)
    kw = {} if k is None else {"top_k": min(k, model.vocab_size)}
    generic = logit_matrix(model, H, F, path="generic", **kw)
    fast = logit_matrix(model, H, F, path="isan", memory_budget=1 + seed % 2000, **kw)
    torch.testing.assert_close(fast, generic, rtol=0, atol=PATH_ATOL)


@given(isans(min_vocab_size=2, max_vocab_size=3, max_horizon=6, max_hidden_dim=4))
def test_fast_path_rank_is_d_for_one_history_length(model):
    """Fact C.4 with equality for generic draws: H = Σ^t (one length), F = Σ^{≤T−t−1}."""
    V, T, d = model.vocab_size, model.horizon, model.hidden_dim
    t = next((t for t in range(T) if V**t >= d), T - 1)
    F = [tuple(f) for ell in range(T - t) for f in all_sequences(V, ell).tolist()]
    L = logit_matrix(model, all_sequences(V, t), F, path="isan")
    assert numerical_rank(L) == generic_level_rank(V, T, d, t)


def test_mixed_history_lengths_reach_lengths_times_d_on_the_fast_path():
    m = random_isan(3, 8, 2, generator=1)
    H = [tuple(s) for s in all_sequences(3, 2).tolist()] + [tuple(s) for s in all_sequences(3, 3).tolist()]
    F = [tuple(s) for ell in range(3) for s in all_sequences(3, ell).tolist()]
    assert numerical_rank(logit_matrix(m, H[:9], F, path="isan")) == 2
    assert numerical_rank(logit_matrix(m, H, F, path="isan")) == 4  # two lengths → 2·d


def test_auto_path_is_exact_below_threshold_and_fast_above():
    m = random_isan(5, 10, 3, generator=0)
    seqs = m.sample(70, generator=1).tolist()
    H, F = [tuple(s[:3]) for s in seqs], [tuple(s[3 : 3 + i % 4]) for i, s in enumerate(seqs)]
    # exact: 9 cells < FAST_PATH_MIN_CELLS, so "auto" runs the generic path itself (same batches)
    torch.testing.assert_close(logit_matrix(m, H[:3], F[:3]), logit_matrix(m, H[:3], F[:3], path="generic"), rtol=0, atol=0)
    torch.testing.assert_close(logit_matrix(m, H, F), logit_matrix(m, H, F, path="generic"), rtol=0, atol=PATH_ATOL)


def test_memory_budget_only_changes_batching():
    """Same entries for any budget; the ISAN's batched step picks its algorithm by batch size, so
    even the generic path agrees to rounding (PATH_ATOL) rather than bit for bit."""
    m = random_isan(4, 8, 3, generator=5)
    H, F = _mixed_sets(m, 1)
    ref = logit_matrix(m, H, F, top_k=2, path="generic")
    for budget in (1, 10**3, 10**9):
        torch.testing.assert_close(logit_matrix(m, H, F, top_k=2, path="generic", memory_budget=budget), ref, rtol=0, atol=PATH_ATOL)
        torch.testing.assert_close(logit_matrix(m, H, F, top_k=2, path="isan", memory_budget=budget), ref, rtol=0, atol=PATH_ATOL)


def test_query_count_with_top_k():
    oracle = CountingOracle(random_isan(4, 6, 2, generator=0))
    logit_matrix(oracle, [(), (1,), (2, 2)], [(), (0,)], top_k=2)
    assert oracle.queries == 2 + 3 * 2  # one per future for the columns, one per cell


def test_progress_bar_only_when_asked(capsys):
    m = random_isan(3, 6, 2, generator=0)
    logit_matrix(m, [(0,), (1,)], [(), (2,)])
    assert capsys.readouterr() == ("", "")
    logit_matrix(m, [(0,), (1,)], [(), (2,)], progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "logit matrix" in captured.err


def test_empty_sets_keep_k():
    m = random_isan(5, 4, 2, generator=0)
    assert logit_matrix(m, [], [(), (1,)], top_k=3).shape == (0, 6)
    res = logit_matrix(m, [()], [], top_k=3, return_columns=True)
    assert res.values.shape == (1, 0) and res.columns.shape == (0, 3)


BAD = [
    ({"top_k": 0}, ValueError, r"top_k must be >= 1; got 0"),
    ({"top_k": 4}, ValueError, r"top_k must be <= 3; got 4"),
    ({"top_k": 1.5}, TypeError, r"top_k must be an integer; got 1.5"),
    ({"top_k": 1, "random_k": 1, "generator": 0}, ValueError, r"at most one of top_k, random_k and columns; got top_k and random_k"),
    ({"random_k": 2}, TypeError, r"random_k needs generator="),
    ({"random_k": 2, "generator": "x"}, TypeError, r"generator must be a torch.Generator or an int seed; got str"),
    ({"columns": torch.zeros(3, 1, dtype=torch.long)}, ValueError, r"columns must have shape \(m, k\) = \(2, k\) with k >= 1, one row per future; got shape \(3, 1\)"),
    ({"columns": torch.tensor([[0, 0], [1, 2]])}, ValueError, r"columns must not repeat a token within a row"),
    ({"columns": torch.tensor([[0], [3]])}, ValueError, r"columns must hold token ids in \[0, 3\); got ids in \[0, 3\]"),
    ({"columns": torch.zeros(2, 1)}, TypeError, r"columns must hold integer token ids; got dtype torch.float32"),
    ({"columns": [[0], [1]]}, TypeError, r"columns must be a \(m, k\) LongTensor of token ids; got list"),
    ({"path": "fast"}, ValueError, r"path must be one of \('auto', 'generic', 'isan'.*\); got 'fast'"),
    ({"memory_budget": 0}, ValueError, r"memory_budget must be >= 1; got 0"),
]


@pytest.mark.parametrize("kwargs, exc, pattern", BAD)
def test_bad_calls(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        logit_matrix(random_isan(3, 4, 2, generator=0), [(0,)], [(), (1,)], **kwargs)


def test_isan_path_needs_an_isan():
    with pytest.raises(ValueError, match=r"path='isan' needs a synth.TimeVaryingISAN; got CountingOracle"):
        logit_matrix(CountingOracle(random_isan(3, 4, 2, generator=0)), [()], [()], path="isan")


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda m: top_k_columns(m, [()], 0), ValueError, r"k must be >= 1; got 0"),
        (lambda m: random_k_columns(3, 2, 4, generator=0), ValueError, r"k must be <= 3; got 4"),
        (lambda m: random_k_columns(3, -1, 1, generator=0), ValueError, r"n_futures must be >= 0; got -1"),
    ],
)
def test_bad_column_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(random_isan(3, 4, 2, generator=0))
