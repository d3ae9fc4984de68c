"""Benchmark: the Gram spectrum of an ISAN's L_{M,50}(H, F) (issue 14, row 3), against its limits.

Setting (as ``bench_logit_matrix.py``): a random ISAN V=256, T=24, d=32 in float64, |H| = |F| = n
with lengths from Appendix A.1.1's procedure, k = 50 top-k columns per future.

Rows, each in a fresh subprocess (CPU and wall time, peak RSS above the process's start):

* ``gram``   — ``logit_spectrum`` today: history states once, symmetric product (dsyrk), the
  eigenvalues read off the accumulated triangle;
* ``factorised`` — an ISAN-only shortcut, G = X̃ M X̃ᵀ from states and maps (``product="factorised"``);
* ``before`` — the route before issue 14: states recomputed per block through ``logit_matrix``,
  full ``addmm`` (``product="full"``), ``gram_spectrum`` of the full matrix;
* ``dense``  — ``torch.linalg.svdvals`` of the materialised matrix (the table's limit).

``gram`` and ``before`` run ``--repeats`` times interleaved with a 2048² float64 matmul (the physical
limit); each is reported as its minimum, so other jobs sharing the cores disturb the ratios less.
Ratios printed: before / gram (target ≥ 2), the Gram path's symmetric FLOPs n²·m·k per CPU second as
a fraction of the matmul's FLOP/s (the physical limit), dense / gram. Accuracy: top-100 σ relative
to ``dense`` (or ``before``).

``--paper-size``: n = 10⁴ (paper A §3.1's size; 5·10¹³ symmetric FLOPs; target ≤ 12 min on this CPU).
The futures are split into ``--parts`` slices; the Gram matrix of each slice (``gram_matrix`` on it)
is added to a float64 running sum, and with ``--checkpoint FILE`` the sum is saved after every slice
(data file first, then FILE naming it and its sha256; on reading, data that does not verify or a
setting that differs is refused),
so a killed run resumes at the next slice and ``--max-parts`` splits the run over several commands.
The total is the sum of the slices' measured CPU (wall) times plus the final ``eigvalsh``; slices
measured under another thread count are refused. ``--part`` instead times one slice and projects
(slice × parts + eigvalsh of the partial sum). Threads default to 1 (``--threads``), for torch and
scipy's BLAS; the thread count is printed with every paper-size figure.
Run: ``.venv/bin/python benchmarks/bench_gram.py`` (n = 2000, ~2 min).
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
import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from logitrank.algorithms import (
    GramAccumulator,
    GramSum,
    gram_spectrum,
    logit_matrix,
    logit_spectrum,
    sample_histories_futures,
    top_k_columns,
)
from logitrank.synth import random_isan

V, T, D, K = 256, 24, 32, 50
PART = 10  # --paper-size: slices of the futures (--parts)
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
    """FLOP/s of an n×n matmul, best of 3 after a warm-up (CPU time on the CPU, synchronised wall time on CUDA)."""
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
        parts = {"product_cpu": 0.0, "eig_cpu": 0.0}  # where the time goes: the symmetric product, eigvalsh

        def timed(fn, name):
            def wrapper(*a, **kw):
                t = clock()
                try:
                    return fn(*a, **kw)
                finally:
                    parts[name] += clock() - t
            return wrapper

        GramSum.add = timed(GramSum.add, "product_cpu")
        GramSum.spectrum = timed(GramSum.spectrum, "eig_cpu")
        sv = logit_spectrum(model, H, F, columns=cols).singular_values
        result |= parts
    elif which == "factorised":
        sv = logit_spectrum(model, H, F, columns=cols, product="factorised").singular_values
    elif which == "before":
        # the route before issue 14: every block of futures through logit_matrix (its own states), addmm
        G = torch.zeros(len(H), len(H), dtype=torch.float64)
        step = max(1, 2**28 // (3 * len(H) * K * 8))
        for a in range(0, len(F), step):
            L = logit_matrix(model, H, F[a:a + step], columns=cols[a:a + step]).to(torch.float64)
            G.addmm_(L, L.T)
        sv = gram_spectrum(G, shape=(len(H), len(F) * K)).singular_values
    else:
        L = logit_matrix(model, H, F, columns=cols, path="isan")
        sv = torch.linalg.svdvals(L)
    result |= {"cpu": clock() - t0, "wall": time.perf_counter() - w0, "peak_bytes": peak_rss_bytes() - base,
              "sv": sv[:100].tolist(), "threads": torch.get_num_threads()}
    Path(out).write_text(json.dumps(result))


def run_child(which: str, n: int, threads: int, extra=()) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, __file__, "--child", which, "--n", str(n), "--out", str(out), "--threads", str(threads),
               *extra]
        rc = subprocess.run(cmd, check=False).returncode
        if rc:
            raise SystemExit(f"bench_gram: the {which!r} run failed (exit status {rc}; its message is above)")
        return json.loads(out.read_text())


def rel_err(a, ref) -> float:
    a, ref = np.asarray(a), np.asarray(ref)
    return float(np.max(np.abs(a - ref) / ref))


# -- paper size: slices of the futures, a verified running sum ----------------------------------------
def _sha256(G: torch.Tensor) -> str:
    return hashlib.sha256(G.numpy().view(np.uint8)).hexdigest()  # hashes the buffer in place


def _load_checkpoint(path: Path, key: dict, n: int):
    """(G, done slices, row order) from a verified checkpoint for this setting, or (zeros, []) when there is none.

    ``path`` is the metadata (JSON); it names its data file, written before it (so a kill at any
    moment leaves a consistent pair)."""
    if not path.exists():
        return torch.zeros(n, n, dtype=torch.float64), [], None
    meta = json.loads(path.read_text())
    if meta.get("key") != key:
        raise SystemExit(f"checkpoint {path} belongs to another setting ({meta.get('key')}, not {key}); "
                         f"remove it or pass another --checkpoint")
    data = path.with_name(meta["data"])
    G = torch.from_numpy(np.fromfile(data, dtype=np.float64)) if data.exists() else None
    if G is None or G.numel() != n * n or _sha256(G) != meta.get("sha256"):
        raise SystemExit(f"checkpoint {path}: {data} does not verify (missing, or size or sha256 differs); "
                         f"remove both to start again")
    return G.view(n, n), meta["done"], meta.get("inv")


def _save_checkpoint(path: Path, key: dict, G: torch.Tensor, done: list, inv) -> None:
    """Write G to a new data file, then the metadata naming it (each via a temporary file and an
    atomic rename), then remove the data file it replaces."""
    data = path.with_name(f"{path.name}.{len(done)}.f64")
    old = json.loads(path.read_text())["data"] if path.exists() else None
    G.numpy().tofile(data.with_name(data.name + ".tmp"))
    os.replace(data.with_name(data.name + ".tmp"), data)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"key": key, "data": data.name, "sha256": _sha256(G), "done": done, "inv": inv}))
    os.replace(tmp, path)
    if old and old != data.name:
        path.with_name(old).unlink(missing_ok=True)


def paper_child(n: int, parts: int, max_parts: int | None, checkpoint: str | None, project: bool, out: str) -> None:
    """The Gram sum of ``logit_spectrum`` split at slices of the futures (resumable), then its
    eigvalsh; writes the CPU and wall time of every slice. The running sum is the library's own
    (:class:`GramAccumulator`: the lower triangle, rows sorted by history length), so the slices add no work
    beyond their block boundaries."""
    model, H, F, cols = setting(n)
    threads = torch.get_num_threads()
    key = {"n": n, "k": K, "V": V, "T": T, "d": D, "parts": parts, "threads": threads}
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    path = Path(checkpoint) if checkpoint else None
    acc = GramAccumulator(model, H)
    done: list = []
    if path:
        G, done, inv = _load_checkpoint(path, key, n)
        acc = GramAccumulator.from_state(model, H, {"G": G, "inv": inv, "columns": K * sum(d["futures"] for d in done)})
    finished = {d["part"] for d in done}
    ran = 0
    for p in range(parts):
        if p in finished:
            continue
        if (max_parts is not None and ran >= max_parts) or (project and ran >= 1):
            break
        t0, w0 = clock(), time.perf_counter()
        acc.add(F[bounds[p]:bounds[p + 1]], columns=cols[bounds[p]:bounds[p + 1]])
        done.append({"part": p, "futures": bounds[p + 1] - bounds[p], "cpu": clock() - t0,
                     "wall": time.perf_counter() - w0, "load": os.getloadavg()[0]})
        ran += 1
        if path:
            state = acc.state()
            _save_checkpoint(path, key, state["G"], done, state["inv"])
    result = {"threads": threads, "parts": parts, "done": done, "complete": len(done) == parts}
    if result["complete"] or project:
        t0, w0 = clock(), time.perf_counter()
        sv = acc.spectrum(consume=True).singular_values
        result |= {"eig_cpu": clock() - t0, "eig_wall": time.perf_counter() - w0, "sv": sv[:100].tolist()}
    Path(out).write_text(json.dumps(result))


def paper_size(args, peak: float, load0: float) -> None:
    n = args.n
    extra = ["--parts", str(args.parts)]
    extra += ["--max-parts", str(args.max_parts)] if args.max_parts is not None else []
    extra += ["--checkpoint", str(Path(args.checkpoint).resolve())] if args.checkpoint else []
    extra += ["--part"] if args.part else []
    r = run_child("paper", n, args.threads, extra)
    done = r["done"]
    cpu, wall = sum(d["cpu"] for d in done), sum(d["wall"] for d in done)
    futures = sum(d["futures"] for d in done)
    flops = n * n * futures * K  # symmetric Gram FLOPs of the slices summed
    print(f"\npaper size: |H| = |F| = {n}, k = {K} (n × m·k = {n} × {n * K}), float64, {r['threads']} thread(s)")
    for d in done:
        print(f"  slice {d['part'] + 1:>2}/{r['parts']}: {d['futures']} futures, {d['cpu']:.1f} s CPU, "
              f"{d['wall']:.1f} s wall (load average {d['load']:.1f})")
    if futures:
        print(f"ratio: Gram symmetric FLOPs / CPU time of the slices = {flops / cpu / 1e9:.1f} GFLOP/s = "
              f"{flops / cpu / peak:.2f} of matmul peak ({r['threads']} thread(s); the peak is one thread's)")
    if args.part:
        proj_cpu = cpu * n / futures + r["eig_cpu"]
        proj_wall = wall * n / futures + r["eig_wall"]
        print(f"PROJECTED from {futures} of {n} futures: sum {cpu:.0f} s × {n / futures:.0f} + eigvalsh "
              f"{r['eig_cpu']:.0f} s = {proj_cpu / 60:.1f} min CPU, {proj_wall / 60:.1f} min wall with "
              f"{r['threads']} thread(s) (target ≤ 12 min)")
    elif r["complete"]:
        print(f"MEASURED in full ({r['parts']} slices, possibly over several runs): sum {cpu:.0f} s + eigvalsh "
              f"{r['eig_cpu']:.0f} s = {(cpu + r['eig_cpu']) / 60:.1f} min CPU, "
              f"{(wall + r['eig_wall']) / 60:.1f} min wall with {r['threads']} thread(s) (target ≤ 12 min); "
              f"σ₁ = {r['sv'][0]:.6g}")
    else:
        print(f"{len(done)} of {r['parts']} slices done (saved in {args.checkpoint}); run again to continue")
    if args.json:
        summary = {"n": n, "k": K, "matmul_peak_flops": peak, "load_start": load0, "load_end": os.getloadavg()[0],
                   **r, "sum_cpu": cpu, "sum_wall": wall,  # r["sv"]: the top-100 σ, for checks against other routes
                   "fraction_of_peak": flops / cpu / peak if futures else None}
        if args.part and futures:
            summary |= {"projected_cpu": cpu * n / futures + r["eig_cpu"], "projected_wall": wall * n / futures + r["eig_wall"]}
        Path(args.json).write_text(json.dumps(summary, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, help="|H| = |F| (default 2000, the issue's row; 10^4 with --paper-size)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of gram and before (min kept)")
    parser.add_argument("--paper-size", action="store_true", help="only the Gram path at n = 10^4 (long)")
    parser.add_argument("--parts", type=int, default=PART, help="--paper-size: slices of the futures (default 10)")
    parser.add_argument("--part", action="store_true",
                        help="with --paper-size: time one slice, project the full time (slice × parts + eigvalsh)")
    parser.add_argument("--max-parts", type=int, help="with --paper-size: run at most this many slices now")
    parser.add_argument("--checkpoint", help="with --paper-size: resumable running sum: metadata (JSON) here, "
                        "its float64 n² data (800 MB) beside it")
    parser.add_argument("--no-dense", action="store_true", help="skip the materialised svdvals row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", choices=["gram", "factorised", "before", "dense", "paper"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child == "paper":
        paper_child(args.n, args.parts, args.max_parts, args.checkpoint, args.part, args.out)
        return
    if args.child:
        child(args.child, args.n, args.out)
        return
    load0 = os.getloadavg()[0]
    args.n = args.n or (10_000 if args.paper_size else 2000)
    if args.paper_size:
        torch.set_num_threads(1)
        peak = matmul_peak()  # one thread's limit, CPU time
        print(f"torch {torch.__version__}, {args.threads} thread(s), load average {load0:.1f}; "
              f"float64 matmul 2048²: {peak / 1e9:.1f} GFLOP/s (CPU time, 1 thread)")
        torch.set_num_threads(args.threads)
        paper_size(args, peak, load0)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return
    n = args.n
    rows: dict[str, list] = {"gram": [], "before": []}
    peaks = []
    for _ in range(args.repeats):  # interleaved, so slow spells from other jobs hit every row alike
        p0 = matmul_peak()
        rows["gram"].append(run_child("gram", n, args.threads))
        rows["before"].append(run_child("before", n, args.threads))
        peaks.append(max(p0, matmul_peak()))  # this pair's limit: the CPU's speed drifts with the host's load
    peak = max(peaks)
    best = {name: min(rs, key=lambda r: r["cpu"]) for name, rs in rows.items()}
    best["factorised"] = run_child("factorised", n, args.threads)
    if not args.no_dense:
        best["dense"] = run_child("dense", n, args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end; float64 matmul 2048²: {peak / 1e9:.1f} GFLOP/s (CPU time, "
          f"best of {args.repeats} interleaved)")
    M = n * K
    flops = n * n * M  # symmetric product: half of 2·n²·M
    g = best["gram"]
    print(f"\nGram spectrum of L_(M,{K})(H, F), |H| = |F| = {n} ({n} × {M}), float64; "
          f"gram and before: min of {args.repeats} interleaved runs")
    print(f"{'path':<46} {'CPU s':>8} {'wall s':>8} {'peak RSS':>10} {'top-100 σ err':>14}")
    ref = best.get("dense", best["before"])["sv"]
    for name, label in (("gram", "Gram (states once, symmetric product)"),
                        ("factorised", "ISAN-only: G = X̃ M X̃ᵀ (product='factorised')"),
                        ("before", "Gram before issue 14 (per-block states, addmm)"),
                        ("dense", "svdvals on the materialised matrix (limit)")):
        if name in best:
            r = best[name]
            print(f"{label:<46} {r['cpu']:>8.1f} {r['wall']:>8.1f} {r['peak_bytes'] / 2**20:>8.0f}MiB "
                  f"{rel_err(r['sv'], ref):>14.1e}")
    ratios = [b["cpu"] / a["cpu"] for a, b in zip(rows["gram"], rows["before"], strict=True)]
    fractions = [flops / a["cpu"] / pk for a, pk in zip(rows["gram"], peaks, strict=True)]
    product = [flops / a["product_cpu"] / pk for a, pk in zip(rows["gram"], peaks, strict=True)]
    print(f"ratio: Gram symmetric FLOPs / CPU time = {flops / g['cpu'] / 1e9:.1f} GFLOP/s = "
          f"{flops / g['cpu'] / peak:.2f} of matmul peak (threads: {args.threads}; whole call, eigvalsh included; "
          f"per run against its own pair's peak: {', '.join(f'{x:.2f}' for x in fractions)})")
    print(f"   where the time goes (fastest run): symmetric product {g['product_cpu']:.2f} s "
          f"(alone {flops / g['product_cpu'] / peak:.2f} of peak; per run {', '.join(f'{x:.2f}' for x in product)}), "
          f"eigvalsh {g['eig_cpu']:.2f} s, blocks and the rest {g['cpu'] - g['product_cpu'] - g['eig_cpu']:.2f} s")
    print(f"ratio: before / now = {best['before']['cpu'] / g['cpu']:.2f}× min/min (target ≥ 2); per interleaved pair "
          f"{', '.join(f'{x:.2f}' for x in ratios)} (median {float(np.median(ratios)):.2f}); "
          f"top-100 σ agree to {rel_err(g['sv'], best['before']['sv']):.1e}")
    print(f"ISAN-only factorised Gram: {best['factorised']['cpu']:.1f} s CPU, top-100 σ agree with the block sum to "
          f"{rel_err(best['factorised']['sv'], g['sv']):.1e} (real models have no such factorisation)")
    summary = {"n": n, "k": K, "threads": args.threads, "matmul_peak_flops": peak, "repeats": args.repeats,
               "load_start": load0, "load_end": os.getloadavg()[0],
               "rows": {k: {kk: vv for kk, vv in v.items() if kk != "sv"} for k, v in best.items()},
               "fraction_of_peak": flops / g["cpu"] / peak, "speedup_vs_before": best["before"]["cpu"] / g["cpu"],
               "speedup_vs_before_pairs": ratios, "fraction_of_peak_runs": fractions,
               "product_fraction_of_peak_runs": product, "peaks_runs": peaks}
    if "dense" in best:
        print(f"ratio: svdvals (limit) / now = {best['dense']['cpu'] / g['cpu']:.2f}× faster, "
              f"{best['dense']['peak_bytes'] / max(g['peak_bytes'], 1):.1f}× the memory")
        summary["speedup_vs_dense"] = best["dense"]["cpu"] / g["cpu"]
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
