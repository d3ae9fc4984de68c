"""Barycentric spanners (paper B §2.2): barycentric_spanner and dist_spanner."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logitrank.algorithms import barycentric_spanner, dist_spanner, extended_words, level_logit_matrix, swap_bound
from logitrank.algorithms._spanner import COEF_TOL
from logitrank.synth import perturbed, random_isan
from logitrank.synth.strategies import isans, power_law_isans

# spanner coefficients and boxes from float pivots: .ci/run reruns these on other BLAS kernels
pytestmark = pytest.mark.numerics

# Coefficients are exact up to float64 rounding of a projection onto a basis whose condition number
# stays below ~1e6 here: reconstruction error <= 1e-9 relative to the largest row norm.
RECON_RTOL = 1e-9


def _check_spanner(rows: torch.Tensor, sp, beta: float) -> None:
    """Every row is written with coefficients in [−β(1+coef_tol), β(1+coef_tol)] and the swap count
    obeys the volume bound; each swap grows ln|det| by more than ln β."""
    assert sp.max_coefficient <= beta * (1 + COEF_TOL)
    assert sp.swaps <= swap_bound(sp.size, beta)
    assert sp.swaps == len(sp.log_volumes) - 1
    for before, after in zip(sp.log_volumes, sp.log_volumes[1:]):
        assert after - before > math.log(beta) - 1e-9
    if sp.size and sp.numerical_rank == sp.size:  # uncapped: exact reconstruction
        scale = float(rows.norm(dim=1).max())
        err = (sp.coefficients @ rows[sp.indices].double() - rows.double()).abs().max()
        assert err <= RECON_RTOL * scale


@st.composite
def low_rank_matrices(draw, max_rows=40, max_cols=12, max_rank=6):
    """(n, k) float64 matrices of rank <= r with entries of very different scales (so that swaps
    happen), plus small-integer matrices (exact ties and duplicate rows)."""
    n = draw(st.integers(1, max_rows))
    k = draw(st.integers(1, max_cols))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    if draw(st.booleans()):
        return torch.randint(-3, 4, (n, k), generator=g).double()
    r = draw(st.integers(1, max_rank))
    scales = torch.exp(3 * torch.randn(n, 1, generator=g, dtype=torch.float64))  # (n, 1) heavy-tailed
    return scales * (torch.randn(n, r, generator=g, dtype=torch.float64) @ torch.randn(r, k, generator=g, dtype=torch.float64))


@given(low_rank_matrices(), st.floats(1.0, 3.0))
def test_every_row_is_written_in_the_box_and_swaps_obey_the_bound(rows, beta):
    sp = barycentric_spanner(rows, beta)
    _check_spanner(rows, sp, beta)
    assert sp.size == sp.numerical_rank <= min(rows.shape)


@given(low_rank_matrices(max_rank=6), st.integers(1, 4))
def test_a_rank_cap_keeps_the_box(rows, rank):
    sp = barycentric_spanner(rows, 2.0, rank=rank)
    _check_spanner(rows, sp, 2.0)
    assert sp.size == min(rank, sp.numerical_rank)


@settings(max_examples=15)
@given(isans(max_vocab_size=3, max_horizon=5, max_hidden_dim=4), st.data())
def test_level_logit_matrices_give_at_most_d_rows(model, data):
    """Fact C.4: rank <= d, so a spanner of L(Σ^t, Σ^{<T−t}) has at most d rows and writes all V^t."""
    t = data.draw(st.integers(0, model.horizon - 1))
    rows = level_logit_matrix(model, t).double()
    sp = barycentric_spanner(rows, 2.0)
    _check_spanner(rows, sp, 2.0)
    assert sp.size <= model.hidden_dim


@settings(max_examples=10)
@given(power_law_isans(min_vocab_size=2, max_vocab_size=3, min_horizon=4, max_horizon=5, min_hidden_dim=4, max_hidden_dim=6))
def test_power_law_rows_with_a_cap(model):
    rows = level_logit_matrix(model, 2).double()
    sp = barycentric_spanner(rows, 2.0, rank=2)
    _check_spanner(rows, sp, 2.0)


def test_hand_worked_swap():
    """Greedy takes rows 2 and 3 (largest norm, then largest residual); row 1 = −4/3·r2 + 2/3·r3
    needs |−4/3| > β = 1, so it replaces r2; the volume grows from |det[r2; r3]| = 3 to
    |det[r1; r3]| = 4 = (4/3)·3."""
    rows = torch.tensor([[0.0, 0.0], [-2.0, 2.0], [2.0, -3.0], [1.0, -3.0]], dtype=torch.float64)
    sp = barycentric_spanner(rows, 1.0)
    assert sp.indices.tolist() == [1, 3] and sp.swaps == 1
    assert np.allclose(np.exp(sp.log_volumes), [3.0, 4.0])
    expected = torch.tensor([[0, 0], [1, 0], [-0.75, 0.5], [0, 1]], dtype=torch.float64)
    torch.testing.assert_close(sp.coefficients, expected, atol=1e-12, rtol=0)


def test_planted_directions_are_recovered_under_a_cap():
    """Three strong directions plus 1e-6 noise: the rank-3 basis leaves only noise-sized residuals."""
    g = torch.Generator().manual_seed(0)
    signal = torch.randn(200, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 20, generator=g, dtype=torch.float64)
    rows = signal + 1e-6 * torch.randn(200, 20, generator=g, dtype=torch.float64)
    sp = barycentric_spanner(rows, 2.0, rank=3)
    assert sp.size == 3 and sp.numerical_rank == 20
    assert float(sp.residuals.max()) < 1e-4
    _check_spanner(rows, sp, 2.0)


def test_swap_bound_values():
    # ⌈ln(r!)/ln 2⌉ − 1: r = 2 → 0, r = 3 → 2 (log2 6 = 2.58), r = 8 → 15 (log2 40320 = 15.3)
    assert [swap_bound(r, 2.0) for r in (0, 1, 2, 3, 8)] == [0, 0, 0, 2, 15]
    assert swap_bound(8, 2.0) <= 8 * math.log2(8)


def test_zero_and_empty_rows():
    sp = barycentric_spanner(torch.zeros(4, 3, dtype=torch.float64))
    assert sp.size == 0 and sp.coefficients.shape == (4, 0) and sp.max_coefficient == 0.0


BAD = [
    (lambda: barycentric_spanner([[1.0]]), TypeError, r"rows must be a \(n, k\) torch.Tensor; got list"),
    (lambda: barycentric_spanner(torch.ones(3)), ValueError, r"rows must be a floating \(n, k\) tensor"),
    (lambda: barycentric_spanner(torch.ones(2, 2, dtype=torch.long)), ValueError, r"rows must be a floating"),
    (lambda: barycentric_spanner(torch.tensor([[float("nan")]])), ValueError, r"rows must be finite"),
    (lambda: barycentric_spanner(torch.ones(2, 2), 0.5), ValueError, r"beta must lie in \[1.0, inf\]; got 0.5"),
    (lambda: barycentric_spanner(torch.ones(2, 2), rank=0), ValueError, r"rank must be >= 1; got 0"),
    (lambda: barycentric_spanner(torch.ones(2, 2), tol=-1.0), ValueError, r"tol must lie in \[0.0, inf\]; got -1.0"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD)
def test_bad_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# -- DistSpanner ----------------------------------------------------------------------------------
def _all_words(V, max_len):
    words = [(z,) for z in range(V)]
    if max_len >= 2:
        words += [(a, z) for a in range(V) for z in range(V)]
    return words


def test_dist_spanner_on_an_exact_model_has_no_misses():
    m = random_isan(3, 5, 3, generator=0)
    words = extended_words(_all_words(3, 2), _all_words(3, 1), 3)
    ds = dist_spanner(m, 3, words, n_histories=60, n_heldout=60, generator=1)
    assert ds.size == 3 and ds.miss_rate == 0.0 and ds.heldout_residual < 1e-10
    assert all(len(h) == 2 for h in ds.histories)
    torch.testing.assert_close(ds.rows, ds.spanner.coefficients[ds.spanner.indices] @ ds.rows)


def test_dist_spanner_with_a_cap_reports_the_residual_not_misses():
    m = perturbed(random_isan(3, 5, 2, generator=0), 0.05, generator=0)
    words = _all_words(3, 2)
    ds = dist_spanner(m, 3, words, n_histories=60, n_heldout=60, rank=2, generator=1)
    assert ds.size == 2 and ds.spanner.numerical_rank > 2
    assert ds.heldout_residual > 1e-3 and 0.0 <= ds.miss_rate <= 1.0


def test_dist_spanner_level_one_is_the_empty_history():
    m = random_isan(2, 3, 2, generator=0)
    ds = dist_spanner(m, 1, _all_words(2, 2), generator=0)
    assert ds.histories == [()] and ds.n_sampled == 1


DIST_BAD = [
    ({"level": 0}, ValueError, r"level must be >= 1; got 0"),
    ({"level": 5}, ValueError, r"level must be <= 4; got 5"),
    ({"words": [(0, 0, 0, 0)]}, ValueError, r"words must be token tuples of length 1 … T − level \+ 1 = 3"),
    ({"words": [(2,)]}, ValueError, r"with ids in \[0, 2\); got \(2,\)"),
    ({"n_histories": 0}, ValueError, r"n_histories must be >= 1; got 0"),
    ({"generator": None}, TypeError, r"needs generator="),
]


@pytest.mark.parametrize("kwargs, exc, pattern", DIST_BAD)
def test_dist_spanner_bad_calls(kwargs, exc, pattern):
    m = random_isan(2, 4, 2, generator=0)
    args = {"level": 2, "words": [(0,), (1,)], "generator": 0, **kwargs}
    with pytest.raises(exc, match=pattern):
        dist_spanner(m, args.pop("level"), args.pop("words"), **args)


def test_dist_spanner_checks_given_samples():
    m = random_isan(2, 4, 2, generator=0)
    with pytest.raises(ValueError, match=r"samples must have length >= level − 1 = 2; got length 1"):
        dist_spanner(m, 3, [(0,), (1,)], samples=torch.zeros(4, 1, dtype=torch.long), heldout=torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"heldout must hold token ids in \[0, 2\); got id 3"):
        dist_spanner(m, 2, [(0,), (1,)], samples=torch.zeros(4, 4, dtype=torch.long), heldout=torch.full((4, 4), 3))
    ds = dist_spanner(m, 2, [(0,), (1,)], samples=[[0, 1, 0, 1], [1, 1, 0, 0]], heldout=[[0, 0, 0, 0]])
    assert ds.n_sampled == 2 and ds.n_heldout == 1
