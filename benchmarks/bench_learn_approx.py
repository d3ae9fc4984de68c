"""Benchmark: paper B's LP sampler and approximate-rank learner (learn_approx) against paper A's learner.

Three tables:

1. LP sampler throughput, T = 16, d = 8, 16, 32 (V = 8): tokens per second of ``LPSampler.sample``
   on fresh prefixes, the median solve time and the size of the longest chain LP. The sampler is
   built from DistSpanner histories and futures F̂_s = single tokens + enough two-token words to
   reach rank d, as a learned sampler would hold.
2. One chain LP of about 200 variables (d = 16, t = 15) solved four ways: the parameterised cvxpy
   problem with HiGHS (ours), the same with HiGHS's own default options, the parameterised problem
   with cvxpy's default solver, and a problem rebuilt for every solve with cvxpy's default solver.
3. learn_approx vs learn_isan on a power-law ISAN (V = 16, T = 12, d = 8): wall time, distinct
   queries, samples and TV (Monte Carlo, 99% Hoeffding half-width).

Run: ``.venv/bin/python benchmarks/bench_learn_approx.py [--quick] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cvxpy as cp
import numpy as np
import torch

from logitrank.algorithms import dist_spanner, extended_words, learn_approx, learn_isan, lp_sampler
from logitrank.algorithms._lp_sampler import _ChainLP
from logitrank.synth import power_law_isan, random_isan
from logitrank.verify import tv_monte_carlo


def sampler_for(d: int, T: int, V: int = 8, seed: int = 0):
    """(model, LPSampler) for a random ISAN of dim d: spanner histories capped at d, F̂_s = Σ plus
    the two-token words (a, z) for a < k with k(V − 1) + V − 1 >= d."""
    model = random_isan(V, T, d, generator=seed)
    k = max(0, -(-(d - (V - 1)) // (V - 1)))
    two = [(a, z) for a in range(k) for z in range(V)]
    hats = [[(z,) for z in range(V)] + (two if s < T else []) for s in range(1, T + 1)]
    samples, held = model.sample(64, generator=seed + 1), model.sample(16, generator=seed + 2)
    H = [[()]] + [dist_spanner(model, s, extended_words(hats[s - 1], hats[s], V), rank=d, samples=samples,
                               heldout=held).histories for s in range(2, T)]
    return model, lp_sampler(model, H, hats)


def table_throughput(dims, T: int, n: int) -> None:
    print(f"\n1. LP sampler throughput (V = 8, T = {T}): {n} sequences after a 2-sequence warm-up that compiles")
    print("   the T − 2 parameterised problems (compile time shown separately); prefixes are fresh (V^t distinct)")
    print(f"{'d':>3} {'vars@t=T-1':>10} {'eqs@t=T-1':>9} {'compile s':>9} {'tokens/s':>9} {'ms/solve':>9} {'solves':>7} {'infeasible':>10}")
    for d in dims:
        model, s = sampler_for(d, T)
        start = time.perf_counter()
        s.sample(2, generator=100)  # warm-up: compiles every problem once
        warm = time.perf_counter() - start
        solves, lp_secs = s.lp_solves, s.lp_seconds
        start = time.perf_counter()
        s.sample(n, generator=0)
        secs = time.perf_counter() - start
        vars_, eqs = s.lp_size(T - 1)
        per = 1e3 * (s.lp_seconds - lp_secs) / max(s.lp_solves - solves, 1)
        compile_s = max(warm - per * solves / 1e3, 0.0)  # warm-up time not explained by solves
        print(f"{d:>3} {vars_:>10} {eqs:>9} {compile_s:>9.2f} {n * T / secs:>9.1f} {per:>9.2f} {s.lp_solves - solves:>7} "
              f"{s.lp_infeasible:>10}")


def table_lp_timing(repeats: int) -> None:
    d, T, t = 16, 16, 15
    model, s = sampler_for(d, T)
    ch = s._chain
    vars_, eqs = s.lp_size(t)
    keys = [tuple(row) for row in model.sample(repeats, generator=5)[:, : t - 1].tolist()]

    def bind(lp, key):
        lp.b2.value = ch.Q[2][key[0], 0]
        for j in range(3, t + 1):
            lp.Q[j].value = ch.Q[j][key[j - 2]]

    def rebuilt(key):  # constants instead of Parameters: cvxpy canonicalises from scratch
        c = {j: cp.Variable(ch.P[j].shape[0], bounds=[-2.0, 2.0]) for j in range(2, t + 1)}
        res = [ch.P[2].T @ c[2] - ch.Q[2][key[0], 0]]
        res += [ch.P[j].T @ c[j] - ch.Q[j][key[j - 2]].T @ c[j - 1] for j in range(3, t + 1)]
        return cp.Problem(cp.Minimize(sum(cp.norm1(r) for r in res)))

    def timed(solve):
        out = []
        for key in keys:
            start = time.perf_counter()
            status = solve(key)
            out.append(time.perf_counter() - start)
        return 1e3 * statistics.median(out), status

    lp = _ChainLP(ch, t, 2.0)
    bind(lp, keys[0])
    lp.problem.solve(solver=cp.HIGHS, warm_start=False)  # compile once (DPP)
    ways = {
        "parameterised, HiGHS dual simplex, no presolve (ours)": lambda k: (bind(lp, k), lp.problem.solve(
            solver=cp.HIGHS, warm_start=False, presolve="off", simplex_strategy=1), lp.problem.status)[-1],
        "parameterised, HiGHS default options": lambda k: (bind(lp, k), lp.problem.solve(
            solver=cp.HIGHS, warm_start=False), lp.problem.status)[-1],
        "parameterised, cvxpy default solver": lambda k: (bind(lp, k), lp.problem.solve(), lp.problem.status)[-1],
        "rebuilt every solve, cvxpy default solver": lambda k: (lambda p: (p.solve(), p.status)[-1])(rebuilt(k)),
    }
    print(f"\n2. one chain LP: {vars_} variables, {eqs} chain equalities (d = {d}, t = {t}); median of {repeats} solves")
    for name, fn in ways.items():
        ms, status = timed(fn)
        print(f"   {name:<56} {ms:>8.1f} ms   ({status})")
    print(f"   (cvxpy's default LP solver here: {lp.problem.solver_stats.solver_name})")


def table_learners(V: int, T: int, d: int, quick: bool, mc: int) -> None:
    model = power_law_isan(V, T, d, 1.0, generator=0)
    kw = dict(n_validation=16, n_spanner=64) if quick else {}
    print(f"\n3. learners on a power-law ISAN, V = {V}, T = {T}, d = {d}, α = 1 (TV: Monte Carlo, {mc} samples)")
    print(f"{'learner':<34} {'seconds':>8} {'queries':>9} {'samples':>8} {'epochs/rounds':>13} {'TV':>10} {'±99%':>6}")
    start = time.perf_counter()
    approx, rep = learn_approx(model, rank=d, epsilon=0.1, generator=0, **kw)
    secs = time.perf_counter() - start
    tv, hw = tv_monte_carlo(model, approx, mc, generator=1)
    label = "learn_approx (paper B)" + (" small n" if quick else "")
    print(f"{label:<34} {secs:>8.2f} {rep.queries:>9} {rep.samples:>8} {rep.epochs:>13} {tv:>10.2e} {hw:>6.3f}")
    print(f"   accepted={rep.accepted} witnesses={rep.witnesses} n_validation={rep.n_validation} n_spanner={rep.n_spanner} "
          f"LP solves={rep.lp_solves} ({rep.lp_seconds:.1f} s in the solver)")
    start = time.perf_counter()
    exact, erep = learn_isan(model, epsilon=0.1, max_rank=max(d, 8), generator=0)
    secs = time.perf_counter() - start
    tv, hw = tv_monte_carlo(model, exact, mc, generator=1)
    print(f"{'learn_isan (paper A)':<34} {secs:>8.2f} {erep.queries:>9} {erep.samples:>8} {erep.rounds:>13} {tv:>10.2e} {hw:>6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sample counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    np.set_printoptions(precision=3)
    print(f"torch {torch.__version__}, cvxpy {cp.__version__}, threads {torch.get_num_threads()}")
    table_throughput([8, 16, 32], 16, n=2 if args.quick else 4)
    table_lp_timing(repeats=5 if args.quick else 15)
    table_learners(16, 12, 8, args.quick, mc=100 if args.quick else 300)


if __name__ == "__main__":
    main()
