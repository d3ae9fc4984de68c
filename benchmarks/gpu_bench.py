"""Issue 14's GPU rows, on one CUDA device, into one JSON (called by ``benchmarks/gpu.sh``).

1. ISAN logits at B = 65536, t = 32, d = 64, V = 256 in float32 and bfloat16, each against a
   matmul of the same dtype measured in the same run (8192², synchronised wall time, best of 3) —
   the GPU's practical peak — and against one bmm of equal token groups (the kernel's ceiling).
2. The Gram spectrum of an ISAN's L_{M,50}(H, F) at |H| = |F| = 10⁴ in float64, G kept on the GPU
   (``logit_spectrum``), with the float64 matmul peak and the top-100 σ against a CPU run of the
   first 1000 histories and futures (the same code path on both devices).
3. Written after each part, so a timeout still leaves the finished parts in the JSON.

Usage: ``python benchmarks/gpu_bench.py --out results/gpu/gpu.json [--parts logits,gram]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gram import K, setting
from bench_isan_logits import measure

from logitrank.algorithms import logit_spectrum


def wall(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def matmul_peak(dtype, n: int = 8192) -> float:
    X = torch.randn(n, n, device="cuda").to(dtype)
    X @ X
    return 2 * n**3 / min(wall(lambda: X @ X)[1] for _ in range(3))


def logits_part() -> list[dict]:
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        row = measure(65536, 32, 64, 256, dtype, "cuda", repeats=3, stepwise=True)
        peak = matmul_peak(dtype)
        row.update(gpu_matmul_8192_gflops=peak / 1e9, ratio_to_gpu_peak=row["gflops"] * 1e9 / peak)
        rows.append(row)
    return rows


def gram_part(n: int = 10_000) -> dict:
    model, H, F, cols = setting(n, device="cuda")
    spec, seconds = wall(lambda: logit_spectrum(model, H, F, columns=cols))
    m = 1000
    small_gpu = logit_spectrum(model, H[:m], F[:m], columns=cols[:m]).singular_values[:100].cpu()
    small_cpu = logit_spectrum(model.to(device="cpu"), H[:m], F[:m], columns=cols[:m].cpu()).singular_values[:100]
    peak = matmul_peak(torch.float64)
    flops = n * n * n * K  # symmetric Gram FLOPs n²·m·k
    return {"n": n, "k": K, "seconds": seconds, "target_seconds": 60, "gflops": flops / seconds / 1e9,
            "gpu_matmul_float64_gflops": peak / 1e9, "ratio_to_gpu_peak": flops / seconds / peak,
            "top100_rel_err_gpu_vs_cpu_n1000": float(np.max(np.abs((small_gpu - small_cpu).numpy()) / small_cpu.numpy())),
            "sigma_1": float(spec.singular_values[0]), "peak_gpu_bytes": torch.cuda.max_memory_allocated()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parts", default="logits,gram")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_bench.py needs a CUDA device (torch.cuda.is_available() is False)")
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result["device"] = torch.cuda.get_device_name(0)
    result["torch"] = torch.__version__
    for part in args.parts.split(","):
        start = time.perf_counter()
        try:
            result[part] = logits_part() if part == "logits" else gram_part()
        except Exception as err:  # noqa: BLE001 - recorded in the JSON; the other parts still run
            result[part] = {"error": f"{type(err).__name__}: {err}"}
        result[f"{part}_wall_seconds"] = time.perf_counter() - start
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        print(f"{part}: {json.dumps(result[part])[:600]}", flush=True)


if __name__ == "__main__":
    main()
