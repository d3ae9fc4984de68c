"""Benchmark: extended logit matrices and their spectra at paper A's working sizes (issue 4).

Three tables, every ratio measured in the same run:

A. ``logit_matrix`` on a random ISAN, |H| = |F| = 2000, k = 50 top-k columns: the factorised ISAN
   path against the generic path (one model call per h ∘ f; run on the first ``--generic-rows``
   histories only, entries/s reported) and against a plain matmul of the shape of the fast path's
   dominant product, (n, d) @ (d, m·k). Useful FLOPs of the fast path: 2·n·m·k·d for the products
   plus 2·k·d²·|f| per future and history length for the maps.
B. The spectrum at |H| = |F| = 4000, k = 50: the Gram path (``logit_spectrum``: float64 L Lᵀ over
   blocks of futures, then ``eigh``) against ``torch.svd_lowrank`` on the materialised matrix (the
   paper's route, Appendix A.1.3). Wall time and peak resident memory are measured in a fresh
   subprocess per path (peak RSS minus the RSS before the work). The Gram path's 2·n²·m·k FLOPs are
   compared with a plain (n, c) @ (c, n) matmul of its block shape.
C. Accuracy: the relative error of the top-100 singular values of each path; at |H| = |F| = 1000
   against a dense ``torch.linalg.svdvals``, at 4000 against the Gram path.

Run: ``.venv/bin/python benchmarks/bench_logit_matrix.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from logitrank.algorithms import logit_matrix, logit_spectrum, lowrank_spectrum, sample_histories_futures, top_k_columns
from logitrank.synth import random_isan

V, T, D = 256, 24, 32  # vocabulary, horizon, hidden dim of the benchmark ISAN
L_MIN, L_MAX, K = 4, 10, 50


def setting(n: int):
    """The model, H, F (|H| = |F| = n, lengths from Appendix A.1.1's procedure) and top-k columns."""
    model = random_isan(V, T, D, generator=0)
    docs = model.sample(2 * n, generator=1, length=L_MAX)  # (2n, ℓ_max) documents
    H, F = sample_histories_futures(docs, n, n, min_length=L_MIN, max_length=L_MAX, rng=0, drop_empty_futures=False)
    return model, H, F, top_k_columns(model, F, K)


def timed(fn, repeats: int = 1):
    """(result of the last call, best wall time over ``repeats`` calls)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """VmHWM of this process image. (``getrusage``'s ru_maxrss would carry over the parent's RSS at
    fork across exec, and the parent holds part A's 1.6 GiB matrices.)"""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


# -- A ------------------------------------------------------------------------------------------------
def bench_paths(n: int, generic_rows: int) -> None:
    model, H, F, cols = setting(n)
    m = len(F)
    L_fast, t_fast = timed(lambda: logit_matrix(model, H, F, columns=cols, path="isan"), repeats=2)
    L_gen, t_gen = timed(lambda: logit_matrix(model, H[:generic_rows], F, columns=cols, path="generic"))
    diff = float((L_fast[:generic_rows] - L_gen).abs().max())
    X = torch.randn(n, D, dtype=torch.float64)
    W = torch.randn(D, m * K, dtype=torch.float64)
    _, t_mm = timed(lambda: X @ W, repeats=2)
    lengths_h = {len(h) for h in H}
    flops = 2 * n * m * K * D + len(lengths_h) * sum(2 * K * D * D * len(f) for f in F)
    e_fast, e_gen = n * m * K / t_fast, generic_rows * m * K / t_gen
    print(f"\nA. logit_matrix, random ISAN V={V} T={T} d={D}, |H|={n}, |F|={m}, k={K} "
          f"({len(lengths_h)} history lengths), float64")
    print(f"{'path':<34} {'time':>9} {'entries/s':>11} {'GFLOP/s':>8} {'vs fast':>8}")
    print(f"{'ISAN fast path (all rows)':<34} {t_fast:>8.2f}s {e_fast:>11.3g} {flops / t_fast / 1e9:>8.2f} {1:>8.2f}")
    print(f"{f'generic path ({generic_rows} rows)':<34} {t_gen:>8.2f}s {e_gen:>11.3g} {'':>8} {e_gen / e_fast:>8.4f}")
    print(f"{'plain matmul (n,d)@(d,m·k)':<34} {t_mm:>8.2f}s {n * m * K / t_mm:>11.3g} {2 * n * m * K * D / t_mm / 1e9:>8.2f} {t_fast / t_mm:>8.2f}x")
    print(f"max |fast − generic| on the shared rows: {diff:.2e}; top-k column selection "
          f"({m} model calls) is not timed above")


# -- B / C: children ------------------------------------------------------------------------------------
def child(which: str, n: int, out: str) -> None:
    model, H, F, cols = setting(n)
    base = rss_bytes()
    result: dict = {}
    if which == "gram":
        spec, t = timed(lambda: logit_spectrum(model, H, F, columns=cols, rank=100))
        result.update(time=t, sv=spec.singular_values[:200].tolist())
    elif which == "lowrank":
        L, t_build = timed(lambda: logit_matrix(model, H, F, columns=cols, path="isan"))
        result["build"] = t_build
        for q in (100, 200):
            spec, t = timed(lambda q=q: lowrank_spectrum(L, q, niter=2, generator=0))
            result[f"q{q}"] = {"time": t, "sv": spec.singular_values.tolist()}
        result["time"] = t_build + result["q100"]["time"]
    elif which == "dense":
        L = logit_matrix(model, H, F, columns=cols, path="isan")
        sv, t = timed(lambda: torch.linalg.svdvals(L))
        result.update(time=t, sv=sv[:200].tolist())
    result["peak_bytes"] = peak_rss_bytes() - base
    Path(out).write_text(json.dumps(result))


def run_child(which: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, __file__, "--child", which, "--n", str(n), "--out", str(out)]
        subprocess.run(cmd + ["--threads", str(torch.get_num_threads())], check=True)
        return json.loads(out.read_text())


def rel_err(a, ref, top: int = 100) -> float:
    a, ref = np.asarray(a[:top]), np.asarray(ref[:top])
    return float(np.max(np.abs(a - ref) / ref))


def bench_spectra(n: int, n_dense: int) -> None:
    gram, low = run_child("gram", n), run_child("lowrank", n)  # fresh processes: peak memory of each path
    M = n * K
    c = max(1, 2**28 // (3 * n * K * 8)) * K  # block width the Gram path used (default budget)
    A = torch.randn(n, c, dtype=torch.float64)
    _, t_mm = timed(lambda: A @ A.T)
    gram_flops = 2 * n * n * M
    print(f"\nB. spectrum of L_(M,{K})(H, F), |H| = |F| = {n} ({n} × {M} matrix, "
          f"{n * M * 8 / 2**30:.1f} GiB in float64)")
    print(f"{'path':<40} {'time':>9} {'peak RSS':>10} {'top-100 σ rel. err':>19}")
    print(f"{'Gram path (float64, blocks)':<40} {gram['time']:>8.1f}s {gram['peak_bytes'] / 2**20:>8.0f}MiB {'reference':>19}")
    for q in (100, 200):
        label = f"svd_lowrank q={q}, niter=2 (+ build {low['build']:.1f}s)"
        err = rel_err(low[f"q{q}"]["sv"], gram["sv"])
        print(f"{label:<40} {low[f'q{q}']['time']:>8.1f}s {'':>10} {err:>19.2e}")
    print(f"{'materialised path peak (build + both q)':<40} {'':>9} {low['peak_bytes'] / 2**20:>8.0f}MiB")
    print(f"time ratio Gram / (build + svd_lowrank q=100): {gram['time'] / low['time']:.2f}; "
          f"memory ratio: {gram['peak_bytes'] / low['peak_bytes']:.3f}")
    print(f"Gram accumulation rate {gram_flops / gram['time'] / 1e9:.1f} GFLOP/s (whole path) vs plain "
          f"(n, {c}) @ ({c}, n) matmul {2 * n * n * c / t_mm / 1e9:.1f} GFLOP/s")
    dense, g_small, l_small = run_child("dense", n_dense), run_child("gram", n_dense), run_child("lowrank", n_dense)
    print(f"\nC. accuracy against a dense SVD at |H| = |F| = {n_dense} (top-100 σ, max relative error)")
    print(f"{'Gram path':<28} {rel_err(g_small['sv'], dense['sv']):.2e}   (dense svdvals {dense['time']:.1f}s, Gram {g_small['time']:.1f}s)")
    for q in (100, 200):
        print(f"{f'svd_lowrank q={q}, niter=2':<28} {rel_err(l_small[f'q{q}']['sv'], dense['sv']):.2e}")
    s = np.asarray(g_small["sv"])
    print(f"σ_1/σ_100 = {s[0] / s[99]:.1f} at n = {n_dense}; σ_1/σ_100 = {gram['sv'][0] / gram['sv'][99]:.1f} at n = {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", choices=["paths", "spectra"], help="run one part")
    parser.add_argument("--threads", type=int, help="torch threads (default torch's); 1 is steadier on a shared machine")
    parser.add_argument("--child", choices=["gram", "lowrank", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child(args.child, args.n, args.out)
        return
    n_paths, generic_rows, n_spec, n_dense = (400, 40, 600, 300) if args.quick else (2000, 100, 4000, 1000)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    if args.only != "spectra":
        bench_paths(n_paths, generic_rows)
    if args.only != "paths":
        bench_spectra(n_spec, n_dense)


if __name__ == "__main__":
    main()
