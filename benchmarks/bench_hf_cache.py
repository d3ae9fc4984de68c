"""Benchmark: prefix-cached vs naive logit-matrix construction on real networks (issue 7).

For L_{M,50}(H, F) with histories of 8–30 tokens and futures of 0–22 tokens cut from the held-out
Shakespeare plays (paper A, Appendix A.3's token lengths), two ways to fill the matrix:

* **cached** — ``logit_matrix`` dispatching to ``CausalLM.logit_block``: each history prefilled
  once, its key/value cache copied across batches of right-padded futures;
* **naive** — ``path="generic"``: every [start] ∘ h ∘ f is one sequence run from scratch (batched
  by the pair of lengths, no padding).

Throughput is reported as *context tokens per second*: Σ over cells of (1 + |h| + |f|), the tokens
the model would read to produce every entry from scratch — the same numerator for both paths, so
the ratio of throughputs is the speed-up. The positions each path actually computes are reported
beside it. The two matrices are compared entry by entry.

Run: ``.venv/bin/python benchmarks/bench_hf_cache.py [--smollm2] [--threads N] [--n N]``.
Results go to ``results/bench_hf_cache.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from logitrank.algorithms import logit_matrix, sample_histories_futures, top_k_columns  # noqa: E402
from logitrank.verify.checks._real_setup import corpus_text  # noqa: E402
from logitrank.verify.models import load_model  # noqa: E402

L_MIN, L_MAX, K = 8, 30, 50


def measure(name: str, n: int, seed: int = 0) -> dict:
    model = load_model(name)
    stream = np.asarray(model.encode(corpus_text("shakespeare")[:200_000]), dtype=np.int64)
    H, F = sample_histories_futures(stream, n, n, min_length=L_MIN, max_length=L_MAX, rng=seed)
    cols = top_k_columns(model, F, K)
    context = sum(1 + len(h) + len(f) for h in H for f in F)
    computed_cached = sum(1 + len(h) for h in H) + len(H) * sum(len(f) for f in F)
    out = {"model": model.name, "|H|": len(H), "|F|": len(F), "k": K, "context tokens": context,
           "positions computed, cached (before padding)": computed_cached, "positions computed, naive": context}
    timings = {}
    for path in ("cached", "naive"):
        start = time.perf_counter()
        L = logit_matrix(model, H, F, columns=cols, path="auto" if path == "cached" else "generic")
        timings[path] = (time.perf_counter() - start, L)
    (tc, Lc), (tn, Ln) = timings["cached"], timings["naive"]
    out.update({
        "seconds cached": round(tc, 2), "seconds naive": round(tn, 2),
        "context tokens/s cached": round(context / tc), "context tokens/s naive": round(context / tn),
        "speed-up": round(tn / tc, 2), "max |cached − naive|": float((Lc - Ln).abs().max()),
    })
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=100, help="|H| = |F| for the tiny model (default 100)")
    parser.add_argument("--n-smollm2", type=int, default=24, help="|H| = |F| for SmolLM2 (default 24)")
    parser.add_argument("--smollm2", action="store_true", help="also run SmolLM2 (needs `make smollm2`)")
    parser.add_argument("--out", type=Path, default=Path("results") / "bench_hf_cache.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [measure("tiny", args.n)]
    if args.smollm2:
        rows.append(measure("smollm2", args.n_smollm2))
    for r in rows:
        print(f"{r['model']:<16} |H|=|F|={r['|H|']:<4} cached {r['seconds cached']:>7.2f} s "
              f"({r['context tokens/s cached']:>8} ctx tok/s)  naive {r['seconds naive']:>7.2f} s "
              f"({r['context tokens/s naive']:>8} ctx tok/s)  speed-up {r['speed-up']:.2f}×  "
              f"max diff {r['max |cached − naive|']:.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "torch": torch.__version__, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
