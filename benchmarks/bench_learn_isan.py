"""Benchmark: learn_isan (paper A, Algorithms 2–3) — wall time, queries, rounds and TV.

Prints one row per (V, T, d). TV is exact where V**T <= 2**16, else a Monte-Carlo estimate with a
99% half-width. Queries are the prefixes that reached the model (repeats served by the cache).
The issue's target size (V=64, T=32, d=32) is opt-in (``--target``): the faithful Algorithm 3
tests about T·N·(V+1)·d prefixes per round, which is far from seconds on 2 cores (see the note
printed at the end). Run: ``.venv/bin/python benchmarks/bench_learn_isan.py``.
"""

from __future__ import annotations

import argparse
import time

import torch

from logitrank.algorithms import learn_isan
from logitrank.synth import random_isan
from logitrank.verify import tv_distance, tv_monte_carlo

SIZES = [(2, 8, 2), (4, 8, 4), (8, 10, 8), (16, 12, 8), (8, 16, 16)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--target", action="store_true", help="also run V=64, T=32, d=32")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = SIZES + ([(64, 32, 32)] if args.target else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, epsilon {args.epsilon}")
    print(f"{'V':>3} {'T':>3} {'d':>3} {'seconds':>8} {'rounds':>6} {'queries':>10} {'N':>6} {'q/s':>9} {'TV':>10} {'±':>7}")
    for V, T, d in sizes:
        model = random_isan(V, T, d, generator=0)
        start = time.perf_counter()
        learned, rep = learn_isan(model, epsilon=args.epsilon, max_rank=max(d, 8), generator=0)
        secs = time.perf_counter() - start
        if V**T <= 2**16:
            tv, hw = tv_distance(model.distribution(), learned.distribution()), 0.0
        else:
            tv, hw = tv_monte_carlo(model, learned, 20000, generator=1)
        print(f"{V:>3} {T:>3} {d:>3} {secs:>8.2f} {rep.rounds:>6} {rep.queries:>10} {rep.n_samples:>6} "
              f"{rep.queries / secs:>9.0f} {tv:>10.2e} {hw:>7.3f}")


if __name__ == "__main__":
    main()
