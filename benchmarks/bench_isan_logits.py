"""Benchmark: TimeVaryingISAN.logits on many prefixes against the matmul peak (issue 14, row 1).

Workload: B prefixes of length t, d = 64, V = 256 (default B = 16384, t = 32). Useful FLOPs: each
of the t steps applies one d×d matrix per prefix (2·B·d² FLOPs), plus the readout (2·B·d·V).

Limits measured in the same run, one thread by default:

* the physical limit: a 2048 × 2048 matmul in the same dtype (the issue's table);
* the design's ceilings, for perfectly balanced tokens and no bookkeeping (all buffers reused, as
  in the kernel): ``bmm (one A)`` — one ``bmm`` of equal groups, (V, B/V, d) @ (V, d, d), per step,
  always the same matrices (they stay in cache: the ceiling the issue quoted); ``bmm + gather`` —
  each step its own matrices A[s] (a time-varying ISAN reads V·d² new numbers per step) and one
  row gather per step (the regrouping every grouped design needs). The second is what the grouped
  kernel can reach on this machine; ``of ceiling`` is the kernel's fraction of it.

Rows: ``logits`` today (``synth/_isan_kernel.py``: grouped plan, one gather per step) and the route
before issue 14 (``method="stepwise"``: regroup at every step). On the CPU, times are CPU time of
this process (min of ``--repeats``), so other jobs sharing the cores disturb the ratios less; on
CUDA synchronised wall time. Run: ``.venv/bin/python benchmarks/bench_isan_logits.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from logitrank.synth import random_isan

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def clock(device) -> float:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def best_of(fn, repeats: int, device) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = clock(device)
        fn()
        best = min(best, clock(device) - start)
    return best


def measure(B: int, t: int, d: int, V: int, dtype, device, repeats: int, stepwise: bool = True) -> dict:
    """One row: times and ratios of today's kernel, the stepwise route and both limits."""
    model = random_isan(V, t + 1, d, generator=0, dtype=dtype, device=device)
    prefixes = torch.randint(V, (B, t), generator=torch.Generator().manual_seed(1)).to(device)
    flops = 2 * B * t * d * d + 2 * B * d * V
    t_now = best_of(lambda: model.logits(prefixes), repeats, device)
    X = torch.randn(2048, 2048, device=device).to(dtype)
    t_mm = best_of(lambda: X @ X, repeats, device)
    peak = 2 * 2048**3 / t_mm
    m = max(1, B // V)
    xs, out = (torch.randn(V * m, d, device=device).to(dtype) for _ in range(2))
    As = torch.randn(t, V, d, d, device=device).to(dtype)  # (t, V, d, d): each step its own matrices
    perms = [torch.randperm(V * m, generator=torch.Generator().manual_seed(s)).to(device) for s in range(t)]

    def one_A():
        for _ in range(t):
            torch.bmm(xs.view(V, m, d), As[0], out=out.view(V, m, d))

    def per_step_gather():
        cur, nxt, x_in = xs, out, torch.empty_like(xs)
        for s in range(t):
            torch.index_select(cur, 0, perms[s], out=x_in)
            torch.bmm(x_in.view(V, m, d), As[s], out=nxt.view(V, m, d))
            cur, nxt = nxt, cur

    eq = 2 * V * m * d * d * t / best_of(one_A, repeats, device)
    ceiling = 2 * V * m * d * d * t / best_of(per_step_gather, repeats, device)
    row = {"B": B, "t": t, "d": d, "V": V, "dtype": str(dtype).split(".")[-1], "device": str(device),
           "seconds": t_now, "gflops": flops / t_now / 1e9, "matmul_peak_gflops": peak / 1e9,
           "ratio_to_peak": flops / t_now / peak, "equal_group_bmm_ratio_to_peak": eq / peak,
           "design_ceiling_ratio_to_peak": ceiling / peak, "ratio_to_design_ceiling": flops / t_now / ceiling}
    if stepwise:
        def before():  # the pre-issue-14 states, then the same readout
            return model._final_states(prefixes, method="stepwise") @ model.B[t].T  # (B, V)

        t_old = best_of(before, max(1, repeats - 1), device)
        row.update(stepwise_seconds=t_old, stepwise_ratio_to_peak=flops / t_old / peak)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16384)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", default="float32,float64", help="comma-separated: float32, float64, bfloat16")
    parser.add_argument("--no-stepwise", action="store_true", help="skip the route before issue 14")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    B, t, d, V = args.batch, args.length, args.hidden, args.vocab
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, load average "
          f"{os.getloadavg()[0]:.1f}; B={B} prefixes of length t={t}, d={d}, V={V}")
    print(f"{'dtype':<9} {'logits':>9} {'GFLOP/s':>8} {'matmul 2048²':>13} {'ratio':>6} {'(target':>8} "
          f"{'before':>8} {'ratio':>6} {'bmm (one A)':>12} {'bmm + gather':>13} {'of ceiling':>11}")
    rows = []
    for name in args.dtypes.split(","):
        row = measure(B, t, d, V, DTYPES[name], args.device, args.repeats, not args.no_stepwise)
        rows.append(row)
        before = (f"{row['stepwise_seconds'] * 1e3:>6.0f}ms {row['stepwise_ratio_to_peak']:>6.2f}"
                  if "stepwise_seconds" in row else f"{'-':>8} {'-':>6}")
        print(f"{name:<9} {row['seconds'] * 1e3:>7.1f}ms {row['gflops']:>8.1f} {row['matmul_peak_gflops']:>8.1f} GF/s "
              f"{row['ratio_to_peak']:>6.2f} {'≥ 0.5)':>8} {before} {row['equal_group_bmm_ratio_to_peak']:>12.2f} "
              f"{row['design_ceiling_ratio_to_peak']:>13.2f} {row['ratio_to_design_ceiling']:>11.2f}")
    print("ratio = ISAN logits FLOP/s ÷ 2048² matmul FLOP/s (same dtype, same run). Ceilings of a grouped design "
          "(equal groups, no bookkeeping), as ratios to the same peak: 'bmm (one A)' one bmm per step on the same "
          "cached matrices; 'bmm + gather' each step its own matrices and one row gather — the reachable one; "
          "'of ceiling' = logits ÷ 'bmm + gather'")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
