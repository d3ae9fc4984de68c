"""Benchmark: paper B's chain LP (highspy live model vs the cvxpy reference) and where learn_approx spends its time.

Three tables, each a ratio measured in the same run (the machine is shared, so absolute times move):

1. Per-solve time of the chain LP on both paths, on the same distinct prefixes: ``solver="highs"``
   (one live HiGHS model per prefix length, only the changed data reloaded, warm basis) and
   ``solver="cvxpy"`` (the parameterised cvxpy problem solved from scratch, the reference). Median
   and mean ms per solve, the ratio, and the largest difference of the optimal total slack.
2. A profile of one ``learn_approx`` run on a cell of the theorist's grid of issue 13: a random ISAN
   V = 4, T = 8, d = 4 read through an oracle with per-entry error ξ = 1e-3 (``perturbed``, a
   repeatable noise), rank 4, ε = 0.1, default settings otherwise. Time by step (LP solves, oracle
   queries, spanners, validation) from cProfile, for both LP paths.
3. (without --quick) learn_approx vs learn_isan on a power-law ISAN (V = 16, T = 12, d = 8): wall
   time, distinct queries, samples and Monte-Carlo TV.

Run: ``.venv/bin/python benchmarks/bench_learn_approx.py [--quick] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import pstats
import statistics
import time
import warnings

import cvxpy as cp
import numpy as np
import torch

from logitrank.algorithms import (
    ApproxNotAcceptedWarning,
    dist_spanner,
    extended_words,
    learn_approx,
    learn_isan,
    lp_sampler,
)
from logitrank.synth import perturbed, power_law_isan, random_isan
from logitrank.verify import tv_monte_carlo


def sampler_for(d: int, T: int, V: int, solver: str, seed: int = 0, noise: float = 0.0):
    """(model, LPSampler) for a random ISAN of dim d (optionally perturbed by ``noise``): spanner
    histories capped at d, F̂_s = Σ plus the two-token words (a, z) for a < k with k(V − 1) + V − 1 >= d."""
    model = random_isan(V, T, d, generator=seed)
    if noise:
        model = perturbed(model, noise, generator=seed)
    k = max(0, -(-(d - (V - 1)) // (V - 1)))
    two = [(a, z) for a in range(k) for z in range(V)]
    hats = [[(z,) for z in range(V)] + (two if s < T else []) for s in range(1, T + 1)]
    samples, held = model.sample(64, generator=seed + 1), model.sample(16, generator=seed + 2)
    H = [[()]] + [dist_spanner(model, s, extended_words(hats[s - 1], hats[s], V), rank=d, samples=samples,
                               heldout=held).histories for s in range(2, T)]
    return model, lp_sampler(model, H, hats, solver=solver, slack_tol=float("inf"))


def _per_solve_ms(sampler, keys) -> list[float]:
    """ms of each chain LP for the given y_{1:t−1} keys (fresh sampler, so no memo hits)."""
    out = []
    for key in keys:
        before = sampler.lp_seconds
        sampler._solve(key)  # one LP, timed inside (prefix loading included)
        out.append(1e3 * (sampler.lp_seconds - before))
    return out


def table_paths(cells, n_paths: int) -> None:
    print("\n1. chain LP per solve, same prefixes on both paths (every prefix length t = 2 … T − 1 of each sample path;")
    print("   the first solve of each t, which builds the model, is excluded). Target: highs <= 2 ms per solve.")
    print("   Medians are the figure to read: on a shared machine the means carry scheduling outliers.")
    print(f"{'cell':<26} {'LP vars@T-1':>11} {'solves':>6} {'cvxpy med':>9} {'highs med':>9} {'cvxpy mean':>10} "
          f"{'highs mean':>10} {'ratio':>6} {'max |Δobj|':>10}")
    for V, T, d, noise in cells:
        model, hi = sampler_for(d, T, V, "highs", noise=noise)
        _, cv = sampler_for(d, T, V, "cvxpy", noise=noise)
        paths = model.sample(n_paths, generator=7).tolist()
        keys = list(dict.fromkeys(tuple(p[: t - 1]) for p in paths for t in range(2, T)))
        warm = [tuple(paths[0][: t - 1]) for t in range(2, T)]  # builds each t's model once
        _per_solve_ms(hi, warm), _per_solve_ms(cv, warm)
        keys = [k for k in keys if k not in set(warm)]
        ms_c, ms_h = _per_solve_ms(cv, keys), _per_solve_ms(hi, keys)
        dobj = max(abs(hi._solutions[k].slack_total - cv._solutions[k].slack_total) for k in keys)
        label = f"V{V} T{T} d{d}" + (f" ξ={noise:g}" if noise else "")
        print(f"{label:<26} {hi.lp_size(T - 1)[0] + 2 * hi.lp_size(T - 1)[1]:>11} {len(keys):>6} "
              f"{statistics.median(ms_c):>9.2f} {statistics.median(ms_h):>9.2f} {statistics.fmean(ms_c):>10.2f} "
              f"{statistics.fmean(ms_h):>10.2f} {statistics.median(ms_c) / statistics.median(ms_h):>6.1f} {dobj:>10.1e}")


_STEPS = {  # cProfile function name → step of learn_approx
    "_solve_chains": "3. chain LPs (all, incl. Python around them)",
    "solve": "   of which the LP solver calls",
    "_build_levels": "1. spanners (dist_spanner + row queries)",
    "_validate": "4. validation (queries + einsums)",
    "_draw_paths": "2. sampling the oracle",
    "logits": "   oracle logits (all steps, via QueryCache)",
}


def table_profile(solvers, quick: bool) -> None:
    V, T, d, xi = 4, 8, 4, 1e-3
    model = perturbed(random_isan(V, T, d, generator=0), xi, generator=0)
    kw = {"n_validation": 16, "n_spanner": 64} if quick else {}
    print(f"\n2. profile of learn_approx on the theorist's cell V={V} T={T} d={d} ξ={xi:g} (rank {d}, ε = 0.1, "
          f"{'n_validation=16, n_spanner=64' if quick else 'default settings'})")
    for solver in solvers:
        prof = cProfile.Profile()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ApproxNotAcceptedWarning)
            start = time.perf_counter()
            prof.enable()
            _, rep = learn_approx(model, rank=d, epsilon=0.1, generator=0, solver=solver, **kw)
            prof.disable()
            wall = time.perf_counter() - start
        stats = pstats.Stats(prof)
        cum = {}
        for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
            if name in _STEPS and ("logitrank" in path or "/algorithms/" in path or "_chain_lp" in path):
                if name == "solve" and "_chain_lp" not in path:
                    continue
                if name == "logits" and "_query_cache" not in path:
                    continue
                cum[name] = cum.get(name, 0.0) + ct
        print(f"   solver={solver}: {wall:.2f} s wall under cProfile, {rep.epochs} epochs, accepted={rep.accepted}, "
              f"{rep.lp_solves} LP solves ({1e3 * rep.lp_seconds / max(rep.lp_solves, 1):.2f} ms each, "
              f"{rep.lp_seconds / wall:.0%} of the run), {rep.queries} distinct queries, "
              f"{len(caught)} not-accepted warning(s)")
        for name, what in _STEPS.items():
            if name in cum:
                print(f"      {what:<48} {cum[name]:>7.2f} s  {cum[name] / wall:>4.0%}")


def table_learners(V: int, T: int, d: int, mc: int) -> None:
    model = power_law_isan(V, T, d, 1.0, generator=0)
    print(f"\n3. learners on a power-law ISAN, V = {V}, T = {T}, d = {d}, α = 1 (TV: Monte Carlo, {mc} samples)")
    print(f"{'learner':<34} {'seconds':>8} {'queries':>9} {'samples':>8} {'epochs/rounds':>13} {'TV':>10} {'±99%':>6}")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApproxNotAcceptedWarning)
        approx, rep = learn_approx(model, rank=d, epsilon=0.1, generator=0)
    secs = time.perf_counter() - start
    tv, hw = tv_monte_carlo(model, approx, mc, generator=1)
    print(f"{'learn_approx (paper B)':<34} {secs:>8.2f} {rep.queries:>9} {rep.samples:>8} {rep.epochs:>13} {tv:>10.2e} {hw:>6.3f}")
    print(f"   accepted={rep.accepted} witnesses={rep.witnesses} LP solves={rep.lp_solves} ({rep.lp_seconds:.1f} s in the solver)")
    start = time.perf_counter()
    exact, erep = learn_isan(model, epsilon=0.1, max_rank=max(d, 8), generator=0)
    secs = time.perf_counter() - start
    tv, hw = tv_monte_carlo(model, exact, mc, generator=1)
    print(f"{'learn_isan (paper A)':<34} {secs:>8.2f} {erep.queries:>9} {erep.samples:>8} {erep.rounds:>13} {tv:>10.2e} {hw:>6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer prefixes, smaller learner, no table 3")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    np.set_printoptions(precision=3)
    print(f"torch {torch.__version__}, cvxpy {cp.__version__}, highspy {importlib.metadata.version('highspy')}, "
          f"threads {torch.get_num_threads()}")
    # The first two are cells of issue 13's theorist grid (V ∈ {2,4,8}, T ∈ {4,8}, d ∈ {2,4,8}); the
    # others are the larger samplers of the previous benchmark.
    cells = [(4, 8, 4, 1e-3), (8, 8, 8, 1e-3), (8, 16, 8, 0.0), (8, 16, 16, 0.0)] + ([] if args.quick else [(8, 16, 32, 0.0)])
    table_paths(cells, n_paths=6 if args.quick else 16)
    table_profile(("highs", "cvxpy"), args.quick)
    if not args.quick:
        table_learners(16, 12, 8, mc=300)


if __name__ == "__main__":
    main()
