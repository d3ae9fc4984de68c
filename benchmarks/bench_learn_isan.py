"""Benchmark: learn_isan (paper A, Algorithms 2–3) — paths compared, and the target size against its limit.

Two tables, every number measured in this run:

1. A small size where every path runs: the per-prefix memo path (the reference, ``path="memo"``),
   the block path unsketched (same decisions, same guarantee) and the block path with the sketch
   (``sketch_futures=d``). Ratios are against the memo path.
2. The target size of issue 14 (V=64, T=32, d=32) with the sketch. Its limit is raw query
   throughput measured here: the time the factorised ``logit_block`` takes for the same number of
   queries (a block of sampled prefixes × futures at the middle level). ratio = run time / that time.

Each run is a fresh process (spawned), so "peak MB" is that run's own peak resident memory
(``resource.getrusage`` max RSS); tracemalloc does not see torch's allocations. Queries are counted
by ``CountingOracle`` on both paths (one prefix whose logits reach the model = one query). TV is a
Monte-Carlo estimate (20000 samples; the ± is a 99% Hoeffding half-width), beside the stated check
"max |logit difference|" over 500 sampled sequences at every level (exact learners: ~1e-13).

Measured on the shared 2-core machine (load average 6-10), 2026-11-29:

* V=16, T=12, d=8: memo 7.2 s, 4,135,795 queries, 527 MB; blocks 5.4 s (1.3x), 4,135,852 queries;
  sketch s=8 1.4 s (5.1x), 473,143 queries (8.7x fewer).
* V=32, T=16, d=16: memo 200 s, 43.47M queries, 4.9 GB; blocks 98 s (2.0x), 43.43M, 1.5 GB; sketch s=16
  4.6 s (44x), 2.42M queries (18x fewer), 468 MB.
* V=64, T=32, d=32, sketch s=32: 190 s, 29.0M queries, 1.8 GB peak, MC TV 2.8e-14, 4.8x the time the
  factorised block needs for the same queries (736k queries/s). Memo path: issue 14's estimate 1.2e9
  queries, ~1.8 h, > 250 GB.

Run: ``.venv/bin/python benchmarks/bench_learn_isan.py [--skip-target] [--compare V T d] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import torch

SMALL = (16, 12, 8)
TARGET = (64, 32, 32)


def _run(V: int, T: int, d: int, path: str, sketch: int | None, threads: int) -> dict:
    """One learner run in this (fresh) process: seconds, queries, peak MB, TV estimate, logit error."""
    torch.set_num_threads(threads)
    from logitrank.algorithms import SpanSettings, learn_isan
    from logitrank.synth import random_isan
    from logitrank.verify import tv_monte_carlo

    model = random_isan(V, T, d, generator=0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    learned, rep = learn_isan(model, epsilon=0.1, max_rank=d, generator=0,
                              settings=SpanSettings(path=path, sketch_futures=sketch))
    secs = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tv, hw = tv_monte_carlo(model, learned, 20000, generator=1)
    seqs = model.sample(500, generator=2)
    err = max(float((learned.logits(seqs[:, :t]) - model.logits(seqs[:, :t])).abs().max()) for t in range(T))
    return {"seconds": secs, "queries": rep.queries, "rounds": rep.rounds, "hidden": rep.hidden_dim,
            "peak_mb": peak / 1024, "base_mb": base / 1024, "tv": tv, "hw": hw, "logit_err": err,
            "rejected": rep.sketch_rejections}


def _throughput(V: int, T: int, d: int, threads: int, n_rows: int = 4096, n_futures: int = 64) -> float:
    """Queries per second of the factorised block (the limit): sampled prefixes of the middle level × futures."""
    torch.set_num_threads(threads)
    from logitrank.synth import random_isan

    model = random_isan(V, T, d, generator=0)
    t = T // 2
    rows = model.sample(n_rows, generator=3)[:, :t]
    g = torch.Generator().manual_seed(4)
    futures = [tuple(torch.randint(V, (int(k),), generator=g).tolist())
               for k in torch.randint(T - t, (n_futures,), generator=g)]
    model.logit_block(rows[:64], futures)  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model.logit_block(rows, futures)
        best = min(best, time.perf_counter() - start)
    return n_rows * n_futures / best


def _fresh(fn, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _row(label: str, r: dict, ref: dict | None) -> str:
    ratio = "" if ref is None else (f"{ref['seconds'] / r['seconds']:>6.1f}x {ref['queries'] / r['queries']:>6.1f}x "
                                    f"{ref['peak_mb'] / r['peak_mb']:>6.2f}x")
    return (f"{label:<22} {r['seconds']:>8.1f} {r['queries']:>12,} {r['peak_mb']:>8.0f} {r['rounds']:>6} "
            f"{r['hidden']:>4} {r['tv']:>9.1e} ±{r['hw']:.3f} {r['logit_err']:>8.1e}  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-target", action="store_true", help="only the small size")
    parser.add_argument("--compare", type=int, nargs=3, default=list(SMALL), metavar=("V", "T", "d"),
                        help="size of table 1 (default 16 12 8; 32 16 16 takes the memo path ~3 min)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {args.threads}, epsilon 0.1, delta 0.05, rank_tol 1e-8")
    head = (f"{'run':<22} {'seconds':>8} {'queries':>12} {'peak MB':>8} {'rounds':>6} {'dim':>4} {'TV (MC)':>9} "
            f"{'':>6} {'|Δlogit|':>8}")
    V, T, d = args.compare
    print(f"\n1. V={V}, T={T}, d={d}: paths side by side (ratios: memo / this, for seconds, queries, peak MB)")
    print(head)
    memo = _fresh(_run, V, T, d, "memo", None, args.threads)
    print(_row("memo (reference)", memo, None))
    for label, path, sketch in [("blocks", "blocks", None), (f"blocks + sketch s={d}", "blocks", d)]:
        print(_row(label, _fresh(_run, V, T, d, path, sketch, args.threads), memo))
    if args.skip_target:
        return
    V, T, d = TARGET
    print(f"\n2. target V={V}, T={T}, d={d} (issue 14: <= 5 min, <= 8 GB); memo path not run "
          "(issue 14's estimate: 1.2e9 queries, ~1.8 h, > 250 GB)")
    qps = _fresh(_throughput, V, T, d, args.threads)
    run = _fresh(_run, V, T, d, "blocks", d, args.threads)
    print(head + "  limit s  ratio")
    limit = run["queries"] / qps
    print(_row(f"blocks + sketch s={d}", run, None) + f"  {limit:>7.1f}  {run['seconds'] / limit:>5.2f}")
    print(f"   limit = queries / factorised-block throughput ({qps:,.0f} queries/s measured here); "
          f"target 300 s: {'met' if run['seconds'] <= 300 else 'NOT met'}; 8 GB: "
          f"{'met' if run['peak_mb'] <= 8192 else 'NOT met'}; sketch picks rejected: {run['rejected']}")


if __name__ == "__main__":
    main()
