"""Benchmark: TimeVaryingISAN.logits on many prefixes vs a plain matmul of the same FLOP count.

Workload (issue 2): 4096 prefixes of length 32, d = 64, V = 256. Useful FLOPs: each of the 32 steps
applies one d×d matrix per prefix (2·B·d² FLOPs), plus the readout (2·B·d·V). The baseline is
``torch.matmul`` of a (B·t, d) by (d, d) matrix — the same number of multiply-adds with perfect
reuse of one matrix — measured in the same run. Run: ``.venv/bin/python benchmarks/bench_isan_logits.py``.
"""

from __future__ import annotations

import argparse
import time

import torch

from logitrank.synth import random_isan


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    B, t, d, V = args.batch, args.length, args.hidden, args.vocab
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    print(f"B={B} prefixes of length t={t}, d={d}, V={V}")
    print(f"{'dtype':<8} {'ISAN logits':>12} {'GFLOP/s':>8} {'matmul':>10} {'GFLOP/s':>8} {'ratio':>6}")
    for dtype in (torch.float32, torch.float64):
        model = random_isan(V, t + 1, d, generator=0, dtype=dtype, device=args.device)
        prefixes = torch.randint(V, (B, t), generator=torch.Generator().manual_seed(1)).to(args.device)
        flops = 2 * B * t * d * d + 2 * B * d * V
        t_isan = best_of(lambda: model.logits(prefixes), args.repeats)
        X = torch.randn(B * t, d, dtype=dtype, device=args.device)
        W = torch.randn(d, d, dtype=dtype, device=args.device)
        Y = torch.randn(B, d, dtype=dtype, device=args.device)
        R = torch.randn(d, V, dtype=dtype, device=args.device)
        t_mm = best_of(lambda: (X @ W, Y @ R), args.repeats)
        g_isan, g_mm = flops / t_isan / 1e9, flops / t_mm / 1e9
        print(f"{str(dtype).split('.')[-1]:<8} {t_isan * 1e3:>10.1f}ms {g_isan:>8.2f} {t_mm * 1e3:>8.1f}ms {g_mm:>8.2f} {g_isan / g_mm:>6.2f}")


if __name__ == "__main__":
    main()
