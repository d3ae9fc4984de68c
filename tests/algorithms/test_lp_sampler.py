"""The joint chain LP of paper B (§2.3): lp_sampler, LPSampler, the greedy baseline, InfeasibleLPError."""

import math

import pytest
import torch
from hypothesis import given, settings

from logitrank.algorithms import (
    InfeasibleLPError,
    LPSampler,
    UniformFallbackWarning,
    barycentric_spanner,
    extended_words,
    greedy_coefficients,
    greedy_sampler,
    lp_sampler,
    word_rows,
)
from logitrank.synth import LanguageModel, all_sequences, perturbed, random_isan
from logitrank.synth.strategies import isans
from logitrank.verify import tv_distance

# float results compared across code paths: .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics

# Simplex returns a basic solution computed by LU solves, so with exact rank the coefficients are
# exact up to float64 rounding (~1e-13 for logits of order 1 and β = 2, measured); TV then stays
# below ~1e-13, while a missed direction costs TV of order 1e-2. 1e-9 separates the two.
TV_TOL = 1e-9
BOX_TOL = 1e-6  # HiGHS keeps variables within its primal feasibility tolerance (1e-7) of bounds


def _words(V: int, max_len: int) -> list:
    """Every word of length 1 … max_len (max_len <= 2)."""
    return [(z,) for z in range(V)] + ([(a, z) for a in range(V) for z in range(V)] if max_len >= 2 else [])


def _exact_sets(model):
    """Futures F̂_s = all words of length <= 2 (fitting level s) and, per level, a β = 2 spanner of
    the rows of *every* history of that length — so every prefix is written inside the box."""
    V, T = model.vocab_size, model.horizon
    hats = [_words(V, min(2, T - s + 1)) for s in range(1, T + 1)]
    histories = [[()]]
    for s in range(2, T):
        tilde = extended_words(hats[s - 1], hats[s], V)
        H = all_sequences(V, s - 1)
        sp = barycentric_spanner(word_rows(model, H, tilde), 2.0)
        histories.append([tuple(H[i].tolist()) for i in sp.indices.tolist()] or [tuple(H[0].tolist())])
    return histories, hats


@settings(max_examples=12)
@given(isans(max_vocab_size=3, min_horizon=2, max_horizon=4, max_hidden_dim=3))
def test_exact_rank_lp_is_feasible_in_the_box_and_exact(model):
    histories, hats = _exact_sets(model)
    s = lp_sampler(model, histories, hats)
    assert tv_distance(model.distribution(), s.distribution()) <= TV_TOL
    assert s.lp_infeasible == 0 and s.fallback_prefixes == 0
    for sol in s._solutions.values():
        assert sol.feasible and sol.slack_max <= 1e-9
        assert all(float(c.abs().max()) <= 2.0 + BOX_TOL for c in sol.coefficients)


def test_sampled_frequencies_match_the_stated_probabilities():
    """Chi-square goodness of fit of 3000 draws against distribution() over the 8 outcomes of V = 2,
    T = 3. Under the null the statistic is χ²(7); rejecting above its 0.999 quantile (24.32) has a
    false-alarm rate of 0.1% (the draw is seeded, so the test is deterministic)."""
    model = random_isan(2, 3, 2, generator=3)
    histories, hats = _exact_sets(model)
    s = lp_sampler(model, histories, hats)
    p = s.distribution()
    draws = s.sample(3000, generator=0)  # (3000, 3)
    index = (draws * torch.tensor([4, 2, 1])).sum(dim=1)
    counts = torch.bincount(index, minlength=8).double()
    expected = 3000 * p
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 24.32
    torch.testing.assert_close(s.log_prob(all_sequences(2, 3)).exp(), p)


def test_the_sampler_is_a_language_model():
    model = random_isan(3, 4, 2, generator=1)
    histories, hats = _exact_sets(model)
    s = lp_sampler(model, histories, hats)
    assert isinstance(s, LanguageModel)
    prefixes = model.sample(20, generator=2)[:, :2]
    torch.testing.assert_close(s.logits(prefixes), model.logits(prefixes), atol=1e-10, rtol=0)
    assert s.logits(prefixes).sum(dim=1).abs().max() < 1e-12


def test_one_parameterised_problem_per_prefix_length():
    """cvxpy path: prefixes of one length re-bind Parameters of the same cvxpy Problem; the LP depends
    on y_{1:t−1} only, so the V continuations of a prefix share one solve."""
    model = random_isan(3, 5, 2, generator=0)
    histories, hats = _exact_sets(model)
    s = lp_sampler(model, histories, hats, solver="cvxpy")
    s.reconstruct([0, 1, 2])
    problem = s._problems[3].problem
    assert problem.parameters() and problem.is_dpp()
    s.reconstruct([1, 1, 0])
    s.reconstruct([1, 1, 2])  # same y_{1:2}: memo
    assert s._problems[3].problem is problem and s.lp_solves == 2


def test_one_live_highs_model_per_prefix_length():
    """highspy path: one model per t, kept alive; loading a prefix changes only the differing blocks."""
    model = random_isan(3, 5, 2, generator=0)
    histories, hats = _exact_sets(model)
    s = lp_sampler(model, histories, hats)
    s.reconstruct([0, 1, 2])
    lp = s._problems[3]
    s.reconstruct([1, 1, 0])
    s.reconstruct([1, 1, 2])  # same y_{1:2}: memo
    assert s._problems[3] is lp and s.lp_solves == 2 and lp.loaded == [1, 1]


def _both_paths(model, histories, hats, **kw):
    a = lp_sampler(model, histories, hats, solver="highs", **kw)
    b = lp_sampler(model, histories, hats, solver="cvxpy", **kw)
    return a, b, a.distribution(), b.distribution()


# Both paths stop at an optimal basis of HiGHS's dual simplex with primal/dual feasibility
# tolerances 1e-7; objectives (total slack, a sum of O(10) terms of order 1) must then agree to
# well within 1e-7 — measured ~1e-14.
OBJ_TOL = 1e-7


@settings(max_examples=6)
@given(isans(max_vocab_size=3, min_horizon=3, max_horizon=5, max_hidden_dim=3))
def test_highs_and_cvxpy_paths_agree_at_exact_rank(model):
    """Exact rank: the optimum (slack 0) is unique in c, so coefficients and distributions agree."""
    histories, hats = _exact_sets(model)
    a, b, pa, pb = _both_paths(model, histories, hats)
    assert float((pa - pb).abs().max()) <= TV_TOL
    for key, sa in a._solutions.items():
        sb = b._solutions[key]
        assert sa.feasible == sb.feasible and abs(sa.slack_total - sb.slack_total) <= OBJ_TOL
        for x, y in zip(sa.coefficients, sb.coefficients):
            torch.testing.assert_close(x, y, atol=1e-8, rtol=0)


def test_highs_and_cvxpy_paths_agree_when_the_chain_is_overdetermined():
    """Approximate rank, futures beyond the rank: both reach the same optimal total slack on every
    prefix (the minimiser need not be unique, so coefficients are compared through the optimum)."""
    model = perturbed(random_isan(3, 5, 2, generator=3), 0.05, generator=3)
    hats = [_words(3, min(2, 5 - s + 1)) for s in range(1, 6)]
    histories = [[()], [(0,), (1,)], [(0, 0), (1, 2)], [(0, 1, 2), (2, 2, 1)]]
    a, b, _, _ = _both_paths(model, histories, hats, slack_tol=math.inf)
    assert a.lp_solves == b.lp_solves == 3 + 9 + 27  # one LP per y_{1:t−1}, t = 2 … 4
    slacks = sorted(sa.slack_total for sa in a._solutions.values())
    assert slacks[len(slacks) // 2] > 1e-4  # really overdetermined (the median prefix has slack)
    for key, sa in a._solutions.items():
        sb = b._solutions[key]
        assert abs(sa.slack_total - sb.slack_total) <= OBJ_TOL * max(1.0, sb.slack_total)
        assert all(float(c.abs().max()) <= 2.0 + BOX_TOL for c in sa.coefficients)


def test_the_chain_view_is_read_only():
    model = random_isan(2, 4, 2, generator=0)
    histories, hats = _exact_sets(model)
    ch = lp_sampler(model, histories, hats).chain
    assert ch.P[2].shape == (len(histories[1]), len(hats[1])) and ch.Q[3].shape[0] == 2 and ch.root.shape == (2,)
    with pytest.raises(ValueError, match="read-only"):
        ch.P[2][0, 0] = 1.0
    with pytest.raises(TypeError):
        ch.Q[2] = None
    with pytest.raises(AttributeError):
        ch.root = None


def test_no_solver_output_reaches_stdout(capfd):
    """Library code never prints: HiGHS's banner and logs are silenced on both paths."""
    model = random_isan(2, 4, 2, generator=0)
    histories, hats = _exact_sets(model)
    for solver in ("highs", "cvxpy"):
        lp_sampler(model, histories, hats, solver=solver).distribution()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_reconstruct_returns_the_chain():
    model = random_isan(2, 5, 2, generator=4)
    histories, hats = _exact_sets(model)
    s = lp_sampler(model, histories, hats)
    rec = s.reconstruct([1, 0, 1, 1])
    assert [c.numel() for c in rec.coefficients] == s.spanner_sizes[:4]
    torch.testing.assert_close(rec.logits, model.logits([[1, 0, 1, 1]])[0], atol=1e-10, rtol=0)
    assert rec.feasible and rec.status == "optimal"


def test_greedy_equals_the_lp_at_exact_rank():
    """With exact rank and futures that resolve it, both write the prefix's row in its unique coordinates."""
    model = random_isan(3, 5, 3, generator=5)
    histories, hats = _exact_sets(model)
    s = lp_sampler(model, histories, hats)
    y = model.sample(1, generator=0)[0, :4].tolist()
    for a, b in zip(s.reconstruct(y).coefficients, greedy_coefficients(s, y)):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    assert tv_distance(model.distribution(), greedy_sampler(s).distribution()) <= TV_TOL


def _overdetermined(on_infeasible):
    """A perturbed model with futures beyond its rank: exact chain equality is impossible."""
    model = perturbed(random_isan(2, 4, 1, generator=0), 0.3, generator=0)
    hats = [_words(2, min(2, 4 - s + 1)) for s in range(1, 5)]
    histories = [[()], [(0,)], [(0, 0)]]
    return model, lp_sampler(model, histories, hats, slack_tol=1e-6, on_infeasible=on_infeasible)


def test_infeasible_prefixes_fall_back_to_uniform_and_are_counted():
    _, s = _overdetermined("uniform")
    with pytest.warns(UniformFallbackWarning, match=r"answered with uniform next tokens"):
        p = s.distribution()
    assert abs(float(p.sum()) - 1) < 1e-12
    assert s.lp_infeasible > 0 and s.fallback_prefixes > 0
    bad = next(k for k, sol in s._solutions.items() if not sol.feasible)
    assert s._solutions[bad].slack_max > 1e-6
    y = torch.tensor([list(bad) + [0]])
    assert float(s.logits(y).abs().max()) == 0.0  # uniform after the failure (exact: zeros written, no arithmetic)


def test_infeasible_prefix_raises_with_the_solver_status():
    _, s = _overdetermined("raise")
    with pytest.raises(InfeasibleLPError, match=r"infeasible: solver status 'optimal', max slack") as info:
        s.distribution()
    assert info.value.status == "optimal" and info.value.slack > info.value.tol == 1e-6


def test_coefficients_stay_in_the_box_when_the_chain_is_overdetermined():
    _, s = _overdetermined("uniform")
    with pytest.warns(UniformFallbackWarning):
        s.distribution()
    for sol in s._solutions.values():
        assert all(float(c.abs().max()) <= s.beta + BOX_TOL for c in sol.coefficients)


def _good():
    model = random_isan(2, 3, 1, generator=0)
    return model, [[()], [(0,)]], [[(0,), (1,)], [(0,), (1,)], [(0,), (1,)]]


BAD = [
    ({"beta": 0.5}, ValueError, r"beta must lie in \[1.0, inf\]; got 0.5"),
    ({"slack_tol": -1.0}, ValueError, r"slack_tol must lie in \[0.0, inf\]; got -1.0"),
    ({"on_infeasible": "skip"}, ValueError, r"on_infeasible must be one of \('uniform', 'raise'\); got 'skip'"),
    ({"solver": "scipy"}, ValueError, r"solver must be one of \('highs', 'cvxpy'\); got 'scipy'"),
    ({"histories": [[(0,)], [(0,)]]}, ValueError, r"histories\[0\] must be \[\(\)\]"),
    ({"histories": [[()]]}, ValueError, r"need histories for levels 1 … max\(1, T − 1\) = 2"),
    ({"futures": [[(0,)], [(0,), (1,)], [(0,), (1,)]]}, ValueError, r"F̂_1\) must contain every single token; missing \[1\]"),
    ({"futures": [[(0,), (1,)], [(0,), (1,)], [(0,), (1,), (0, 0)]]}, ValueError, r"do not fit level 3"),
    ({"histories": [[()], [(0, 1)]]}, ValueError, r"histories\[1\] must be a non-empty list of tuples of length 1"),
]


@pytest.mark.parametrize("kwargs, exc, pattern", BAD)
def test_bad_calls(kwargs, exc, pattern):
    model, H, F = _good()
    args = {"histories": H, "futures": F, **kwargs}
    with pytest.raises(exc, match=pattern):
        lp_sampler(model, args.pop("histories"), args.pop("futures"), **args)


def test_bad_reconstruct_and_greedy_calls():
    model, H, F = _good()
    s = lp_sampler(model, H, F)
    with pytest.raises(ValueError, match=r"prefix must have length 1 … T − 1 = 2; got length 3"):
        s.reconstruct([0, 0, 0])
    with pytest.raises(ValueError, match=r"prefix must hold token ids in \[0, 2\); got \(0, 5\)"):
        s.reconstruct([0, 5])
    with pytest.raises(TypeError, match=r"sampler must be an LPSampler; got TimeVaryingISAN"):
        greedy_sampler(model)
    with pytest.raises(TypeError, match=r"sampler must be an LPSampler; got TimeVaryingISAN"):
        greedy_coefficients(model, [0])
    with pytest.raises(ValueError, match=r"prefix must have length 1 … T − 1 = 2; got length 3"):
        greedy_coefficients(s, [0, 0, 0])
    with pytest.raises(ValueError, match=r"enumerates V\*\*T = 2\*\*3 = 8 sequences, more than max_sequences=4"):
        s.distribution(max_sequences=4)
    assert isinstance(s, LPSampler) and math.isclose(float(s.distribution().sum()), 1.0)


def test_the_lp_sampler_does_not_import_the_greedy_baseline():
    """The greedy baseline reads the sampler's public chain; the dependency runs one way only."""
    import ast
    import importlib
    from pathlib import Path

    for name, forbidden in (("_lp_sampler", "_greedy"), ("_chain_lp", "_greedy"), ("_chain_lp", "_lp_sampler")):
        module = importlib.import_module(f"logitrank.algorithms.{name}")
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not any(m.endswith(forbidden) for m in imported), (name, imported)
    greedy = ast.parse(Path(importlib.import_module("logitrank.algorithms._greedy").__file__).read_text(encoding="utf-8"))
    private = {node.attr for node in ast.walk(greedy) if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")}
    assert private == set(), private  # no sampler privates read or patched
