"""Benchmark: the Gram spectrum of an ISAN's L_{M,50}(H, F) (issue 14, row 3), against its limits.

Setting (as ``bench_logit_matrix.py``): a random ISAN V=256, T=24, d=32 in float64, |H| = |F| = n
with lengths from Appendix A.1.1's procedure, k = 50 top-k columns per future.

Rows, each in a fresh subprocess (wall and CPU time, peak RSS above the process's start):

* ``gram``   — ``logit_spectrum`` today: history states once, symmetric product (dsyrk);
* ``factorised`` — an ISAN-only shortcut, G = X̃ M X̃ᵀ from states and maps (``product="factorised"``);
* ``before`` — the route before issue 14: states recomputed per block through ``logit_matrix``,
  full ``addmm`` (``product="full"``);
* ``dense``  — ``torch.linalg.svdvals`` of the materialised matrix (the table's limit).

Ratios printed: dense / gram (the issue's limit), before / gram (target ≥ 2), and the Gram path's
symmetric FLOPs n²·m·k per second as a fraction of a 2048² float64 matmul measured in the same run
(the physical limit). Accuracy: top-100 σ relative to the ``before`` route and to ``dense``.

``--paper-size`` runs only ``gram`` at n = 10⁴ (paper A §3.1's size; 5·10¹³ symmetric FLOPs, ~10 min on
one core here; target ≤ 12 min). Threads default to 1 (``--threads``), for torch and scipy's BLAS.
Run: ``.venv/bin/python benchmarks/bench_gram.py``.
"""

from __future__ import annotations

import os
import sys


def _threads_from_argv() -> str:
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# scipy's BLAS (dsyrk) reads its thread count at import: set it before numpy/scipy load
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads_from_argv())

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from logitrank.algorithms import logit_matrix, logit_spectrum, sample_histories_futures, top_k_columns
from logitrank.synth import random_isan

V, T, D, K = 256, 24, 32, 50
PART = 10  # --paper-size --part: time the Gram sum over 1/PART of the futures and extrapolate
L_MIN, L_MAX = 4, 10


def setting(n: int, device="cpu"):
    model = random_isan(V, T, D, generator=0, device=device)
    docs = model.sample(2 * n, generator=1, length=L_MAX)
    H, F = sample_histories_futures(docs.cpu(), n, n, min_length=L_MIN, max_length=L_MAX, rng=0,
                                    drop_empty_futures=False)
    return model, H, F, top_k_columns(model, F, K)


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return int(next(x for x in f if x.startswith("VmHWM:")).split()[1]) * 1024


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def matmul_peak(dtype=torch.float64, device="cpu", n: int = 2048) -> float:
    """FLOP/s of an n×n matmul, best of 3 (CPU time on the CPU, synchronised wall time on CUDA)."""
    X = torch.randn(n, n, dtype=dtype, device=device)
    best = float("inf")
    for _ in range(4):
        t = clock(device)
        X @ X
        best = min(best, clock(device) - t)
    return 2 * n**3 / best


def clock(device="cpu") -> float:
    """CPU time of this process on the CPU (robust to other jobs sharing the cores), else wall."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def child(which: str, n: int, out: str) -> None:
    model, H, F, cols = setting(n)
    base = rss_bytes()
    result: dict = {}
    t0, w0 = clock(), time.perf_counter()
    if which == "gram":
        sv = logit_spectrum(model, H, F, columns=cols).singular_values
    elif which == "factorised":
        sv = logit_spectrum(model, H, F, columns=cols, product="factorised").singular_values
    elif which == "gram-part":  # the Gram sum over the first m/PART futures, then eigvalsh, timed apart
        from logitrank.algorithms import gram_matrix, gram_spectrum

        m = max(1, len(F) // PART)
        G = gram_matrix(model, H, F[:m], columns=cols[:m])
        t_sum = clock() - t0
        sv = gram_spectrum(G).singular_values
        t_eig = clock() - t0 - t_sum
        result = {"sum_cpu": t_sum, "eig_cpu": t_eig, "futures": m, "projected_cpu": t_sum * len(F) / m + t_eig}
    elif which == "before":
        from logitrank.algorithms._gram import _accumulate, gram_spectrum

        G = _accumulate(model, H, F, cols, "auto", 4096, 2**28, False, product="full", reuse_states=False)
        sv = gram_spectrum(G, shape=(len(H), len(F) * K)).singular_values
    else:
        L = logit_matrix(model, H, F, columns=cols, path="isan")
        sv = torch.linalg.svdvals(L)
    result |= {"cpu": clock() - t0, "wall": time.perf_counter() - w0, "peak_bytes": peak_rss_bytes() - base,
              "sv": sv[:100].tolist(), "threads": torch.get_num_threads()}
    Path(out).write_text(json.dumps(result))


def run_child(which: str, n: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, __file__, "--child", which, "--n", str(n), "--out", str(out), "--threads", str(threads)]
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def rel_err(a, ref) -> float:
    a, ref = np.asarray(a), np.asarray(ref)
    return float(np.max(np.abs(a - ref) / ref))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="|H| = |F| (default 2000, the issue's row)")
    parser.add_argument("--paper-size", action="store_true", help="only the Gram path at n = 10^4 (long)")
    parser.add_argument("--part", action="store_true",
                        help="with --paper-size: sum over 1/10 of the futures, project the full time (sum × 10 + eigvalsh)")
    parser.add_argument("--no-dense", action="store_true", help="skip the materialised svdvals row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", choices=["gram", "gram-part", "factorised", "before", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        child(args.child, args.n, args.out)
        return
    n = 10_000 if args.paper_size else args.n
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}; "
          f"float64 matmul 2048²: {peak / 1e9:.1f} GFLOP/s (CPU time)")
    rows = {"gram": run_child("gram-part" if args.part else "gram", n, args.threads)}
    rows["factorised"] = run_child("factorised", n, args.threads)
    if not args.paper_size:
        rows["before"] = run_child("before", n, args.threads)
        if not args.no_dense:
            rows["dense"] = run_child("dense", n, args.threads)
    M = n * K
    flops = n * n * M  # symmetric product: half of 2·n²·M
    g = rows["gram"]
    print(f"\nGram spectrum of L_(M,{K})(H, F), |H| = |F| = {n} ({n} × {M}), float64")
    print(f"{'path':<44} {'CPU s':>8} {'wall s':>8} {'peak RSS':>10} {'top-100 σ err':>14}")
    ref = rows.get("dense", rows.get("before", g))["sv"]
    for name, label in (("gram", "Gram (states once, symmetric product)"),
                        ("factorised", "ISAN-only: G = X̃ M X̃ᵀ (product='factorised')"),
                        ("before", "Gram before issue 14 (per-block states, addmm)"),
                        ("dense", "svdvals on the materialised matrix (limit)")):
        if name in rows:
            r = rows[name]
            print(f"{label:<44} {r['cpu']:>8.1f} {r['wall']:>8.1f} {r['peak_bytes'] / 2**20:>8.0f}MiB "
                  f"{rel_err(r['sv'], ref):>14.1e}")
    summary = {"n": n, "k": K, "matmul_peak_flops": peak, "rows": {k: {kk: vv for kk, vv in v.items() if kk != "sv"}
                                                                  for k, v in rows.items()}}
    t_sum = g["cpu"]
    if "futures" in g:  # partial run: the sum over the first futures only
        flops, t_sum = n * n * g["futures"] * K, g["sum_cpu"]
    print(f"ratio: Gram symmetric FLOPs / CPU time = {flops / t_sum / 1e9:.1f} GFLOP/s = "
          f"{flops / t_sum / peak:.2f} of matmul peak (threads: {args.threads})")
    if "before" in rows:
        print(f"ratio: before / now = {rows['before']['cpu'] / g['cpu']:.2f}× (target ≥ 2); "
              f"top-100 σ agree to {rel_err(g['sv'], rows['before']['sv']):.1e}")
        summary["speedup_vs_before"] = rows["before"]["cpu"] / g["cpu"]
    print(f"ISAN-only factorised Gram: {rows['factorised']['cpu']:.1f} s CPU, top-100 σ agree with the block sum to "
          f"{rel_err(rows['factorised']['sv'], g['sv']):.1e} (real models have no such factorisation)")
    if "dense" in rows:
        print(f"ratio: svdvals (limit) / now = {rows['dense']['cpu'] / g['cpu']:.2f}× faster, "
              f"{rows['dense']['peak_bytes'] / max(g['peak_bytes'], 1):.1f}× the memory")
        summary["speedup_vs_dense"] = rows["dense"]["cpu"] / g["cpu"]
    if args.paper_size and args.part:
        print(f"paper size, measured on {g['futures']} of {n} futures: sum {g['sum_cpu']:.0f} s + eigvalsh "
              f"{g['eig_cpu']:.0f} s CPU; projected full run {g['projected_cpu'] / 60:.1f} min CPU (target ≤ 12 min); "
              f"the ratio line above is for the partial sum")
    elif args.paper_size:
        print(f"paper size: {g['cpu'] / 60:.1f} min CPU, {g['wall'] / 60:.1f} min wall (target ≤ 12 min)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
