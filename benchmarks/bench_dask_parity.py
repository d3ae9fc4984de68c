"""Benchmark: the Dask path of `logitrank spectrum` against the local path and two bare processes (issue 32, item 6).

In one run, on the same cut (``--model``, ``--n``, ``--k``, ``--dtype``; SmolLM2 in bfloat16 at N = 32, k = 50
by default), the matrix build of the spectrum (``summary["seconds"]["matrix"]``: step 3, the logit matrix and
its Gram) is timed for

(i)   the local path, 1 thread, in this process;
(ii)  ``--backend dask`` on a LocalCluster of 1 worker process × 1 thread (workers started by a nanny, as
      ``dask worker`` starts them, so with its ``MALLOC_TRIM_THRESHOLD_``);
(iii) the same on 2 workers × 1 thread;
(iv)  two bare processes in parallel, each computing its share of the local path's chunks (split
      longest-first into two shares of about equal cells, the split Dask's priorities aim at), started
      together once both have loaded the model; its time is the slower process's.

Models are loaded before any clock starts (the workers' by a warm-up task). Printed: seconds and cells/s
of each, the CPU seconds (user + system) spent on it — the local process's and the workers' over step 3
alone, the bare processes' over their share — with the system seconds and page faults (the nanny's malloc setting shows there),
α of (i)–(iii) (equal to ~1e-9 when the paths compute the same rows), and the ratios (ii)/(i) (target ≥ 0.9)
and (iii)/(iv) (target ≥ 0.9) as speeds, i.e. time (i) / time (ii) and time (iv) / time (iii), by wall time and
by CPU seconds (the latter stands when other programs share the cores; the former needs idle ones).

Options: ``--untuned`` adds (ii′), 1 worker with the library's malloc tuning switched off (what the nanny's
variable costs); ``--fp32`` adds the local path in float32 beside (i) (bfloat16's speed-up, same run);
``--repeats R`` runs everything R times interleaved and keeps each row's minimum; ``--quick`` is the tiny
model at N = 24, k = 8 (a few seconds, to check that it runs); ``--json PATH`` writes the numbers.

Run: ``.venv/bin/python benchmarks/bench_dask_parity.py [--model smollm2 --n 32 --k 50 --dtype bfloat16]
[--fp32] [--untuned] [--repeats R] [--quick] [--json results/bench_dask_parity.json]``. The load average
is printed before and after: two workers need two idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from logitrank.verify.experiments._spectrum import SpectrumConfig, compute_spectrum


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--fp32", action="store_true", help="also time the local path in float32 (bfloat16's speed-up)")
    ap.add_argument("--untuned", action="store_true", help="also time 1 worker without the malloc tuning")
    ap.add_argument("--rows", default="i,ii,iii,iv", help="which rows to run (default i,ii,iii,iv)")
    ap.add_argument("--quick", action="store_true", help="the tiny model at N = 24, k = 8")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--bare", default=None, help=argparse.SUPPRESS)  # "i/2": run as bare process i of 2
    args = ap.parse_args(argv)
    if args.quick:
        args.model, args.n, args.k = "tiny", 24, 8
    return args


def _config(args, out: Path, dtype: str | None = None, **dask) -> SpectrumConfig:
    return SpectrumConfig(model=args.model, n=args.n, k=args.k, dtype=dtype or args.dtype, threads=1,
                          out=out, **dask)


def _timed(config: SpectrumConfig) -> dict:
    result = compute_spectrum(config)
    s = result.summary
    return {"seconds": s["seconds"]["matrix"], "cells": s["|H|"] * s["|F|"], "alpha": result.alpha}


# -- (i) local -------------------------------------------------------------------------------------
def local(args, tmp: Path, dtype: str | None = None) -> dict:
    """The local path; its CPU seconds are taken around step 3 alone (``_spectrum._local_gram``)."""
    from logitrank.verify.experiments import _spectrum

    torch.set_num_threads(1)
    inner, cpu = _spectrum._local_gram, {}

    def timed_gram(*a, **kw):
        u0 = _usage()
        inner(*a, **kw)
        u1 = _usage()
        cpu.update({"cpu s": round(u1[0] - u0[0] + u1[1] - u0[1], 2), "system s": round(u1[1] - u0[1], 2),
                    "page faults": u1[2] - u0[2]})

    _spectrum._local_gram = timed_gram
    try:
        return _timed(_config(args, tmp / f"local-{dtype or args.dtype}-{time.time_ns()}", dtype)) | cpu
    finally:
        _spectrum._local_gram = inner


# -- (ii), (iii) Dask ------------------------------------------------------------------------------
def _warm(model: str, dtype: str, untuned: bool) -> int:
    """On a worker: load the model (as the tasks will) and, with ``untuned``, switch the malloc tuning off."""
    from logitrank.verify.experiments import _distributed_gram as dg

    if untuned:
        dg._MALLOC_TUNED.append(True)
    dg._worker_model(model, "cpu", dtype)
    return os.getpid()


def _usage() -> tuple:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def dask(args, tmp: Path, workers: int, untuned: bool = False) -> dict:
    """The Dask path; the workers' CPU seconds are taken around step 3 alone (``_spectrum._dask_gram``)."""
    import distributed

    from logitrank.verify.experiments import _spectrum

    inner, marks = _spectrum._dask_gram, []

    def timed_gram(*a, **kw):
        marks.append(client.run(_usage))
        inner(*a, **kw)
        marks.append(client.run(_usage))

    with (distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None) as cluster,
          distributed.Client(cluster) as client):
        client.run(_warm, args.model, args.dtype, untuned)
        _spectrum._dask_gram = timed_gram
        try:
            row = _timed(_config(args, tmp / f"dask{workers}-{time.time_ns()}", backend="dask",
                                 scheduler=cluster.scheduler_address))
        finally:
            _spectrum._dask_gram = inner
    before, after = marks
    row["system s"] = round(sum(after[w][1] - before[w][1] for w in after), 2)
    row["cpu s"] = round(sum(after[w][0] - before[w][0] for w in after) + row["system s"], 2)
    row["page faults"] = sum(after[w][2] - before[w][2] for w in after)
    return row


# -- (iv) two bare processes -----------------------------------------------------------------------
def _shares(chunks: list, parts: int) -> list:
    """The chunks (start, end) dealt longest first to the share with the fewest futures so far."""
    shares, load = [[] for _ in range(parts)], [0] * parts
    for s, e in sorted(chunks, key=lambda c: c[0] - c[1]):
        i = load.index(min(load))
        shares[i].append((s, e))
        load[i] += e - s
    return shares


def bare_process(args) -> None:
    """One bare process: load, cut, wait for "go" on stdin, compute its share of the chunks, print JSON."""
    from logitrank.algorithms import logit_matrix, top_k_columns
    from logitrank.verify.experiments import _spectrum

    torch.set_num_threads(1)
    index, parts = (int(x) for x in args.bare.split("/"))
    config = _config(args, Path(tempfile.gettempdir()))
    model = _spectrum._load(config)
    n, lengths, source = _spectrum._fit_to_model(config, model)
    H, F = _spectrum._cut(config, model, n, lengths, source)
    cols = top_k_columns(model, F, config.k)
    sizes = [(int(len(H) / i**0.5), int(len(F) / i**0.5)) for i in _spectrum.FACTORS]
    stops = {mi for ni, mi in sizes if min(ni, mi) >= 8}  # the downsizing stops compute_spectrum keeps
    mine = _shares(_spectrum._chunks(len(F), len(H), stops), parts)[index]
    G = torch.zeros(len(H), len(H), dtype=torch.float64)
    print("ready", flush=True)
    sys.stdin.readline()
    t0, u0 = time.perf_counter(), _usage()
    for s, e in mine:
        b64 = logit_matrix(model, H, F[s:e], columns=cols[s:e]).to(torch.float64)  # (n, (e-s)·k)
        G.addmm_(b64, b64.T)
    u1 = _usage()
    print(json.dumps({"seconds": time.perf_counter() - t0, "futures": sum(e - s for s, e in mine),
                      "user s": u1[0] - u0[0], "system s": u1[1] - u0[1], "page faults": u1[2] - u0[2]}), flush=True)


#: this process's environment as it started: a LocalCluster's nanny writes its pre-spawn-environ
#: (MALLOC_TRIM_THRESHOLD_=65536, OMP_NUM_THREADS=1, …) into os.environ for good, and bare processes
#: started after it would inherit them
_CLEAN_ENV = dict(os.environ)


def bare(args, parts: int = 2) -> dict:
    cmd = [sys.executable, __file__, "--model", args.model, "--n", str(args.n), "--k", str(args.k),
           "--dtype", args.dtype]
    procs = [subprocess.Popen([*cmd, "--bare", f"{i}/{parts}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=_CLEAN_ENV) for i in range(parts)]
    for p in procs:
        while (line := p.stdout.readline()) and line.strip() != "ready":
            pass
    for p in procs:  # both loaded: start together
        p.stdin.write("go\n")
        p.stdin.flush()
    rows = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait(timeout=60)
    return {"seconds": max(r["seconds"] for r in rows), "cells": args.n * args.n, "alpha": None,
            "cpu s": round(sum(r["user s"] + r["system s"] for r in rows), 2),
            "system s": round(sum(r["system s"] for r in rows), 2), "page faults": sum(r["page faults"] for r in rows),
            "processes": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rows]}


# -- the run ---------------------------------------------------------------------------------------
#: ratio label → (row a, row b): b's speed over a's (time a / time b, or CPU seconds a / CPU seconds b)
_RATIOS = {
    "(ii)/(i) Dask 1 worker / local": ("(i)", "(ii)"),
    "(iii)/(iv) Dask 2 workers / 2 bare processes": ("(iv)", "(iii)"),
    "2 workers over 1 worker, (iii) over (ii)": ("(ii)", "(iii)"),
    "2 bare processes over 1, (iv) over (i)": ("(i)", "(iv)"),
    "bfloat16 over float32, local, (i) over (i')": ("(i')", "(i)"),
    "tuned over untuned, 1 worker, (ii) over (ii')": ("(ii')", "(ii)"),
}
def _best(runs: list) -> dict:
    return min(runs, key=lambda r: r["seconds"])


def measure(args) -> dict:
    """Every row ``args.repeats`` times, interleaved; each row's fastest run."""
    rows: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        plan = [("(i) local, 1 thread", lambda: local(args, Path(tmp))),
                ("(i') local, 1 thread, float32", lambda: local(args, Path(tmp), "float32")),
                ("(ii) Dask, 1 worker x 1 thread", lambda: dask(args, Path(tmp), 1)),
                ("(ii') Dask, 1 worker, malloc untuned", lambda: dask(args, Path(tmp), 1, True)),
                ("(iii) Dask, 2 workers x 1 thread", lambda: dask(args, Path(tmp), 2)),
                ("(iv) 2 bare processes, half each", lambda: bare(args))]
        wanted = set(args.rows.split(",")) | ({"i'"} if args.fp32 else set()) | ({"ii'"} if args.untuned else set())
        plan = [(name, run) for name, run in plan if name.split(" ", 1)[0].strip("()") in wanted]
        for _ in range(args.repeats):
            for name, run in plan:
                rows.setdefault(name, []).append(run())
    return {name: _best(runs) for name, runs in rows.items()}


def report(args, rows: dict, loads: tuple) -> dict:
    t = {name.split(" ", 1)[0]: r["seconds"] for name, r in rows.items()}
    c = {name.split(" ", 1)[0]: r["cpu s"] for name, r in rows.items()}
    present = {label: ab for label, ab in _RATIOS.items() if ab[0] in t and ab[1] in t}
    ratios = {f"{label}, by wall time": t[a] / t[b] for label, (a, b) in present.items()}
    # the work each needed, whatever else held the cores (for (iv)/(iii): the overhead, not the parallelism)
    ratios |= {f"{label}, by CPU seconds": c[a] / c[b] for label, (a, b) in present.items()}
    print(f"{args.model} {args.dtype}, N = {args.n}, k = {args.k}; load average {loads[0]:.2f} before, "
          f"{loads[1]:.2f} after; {os.cpu_count()} CPUs")
    print("  row                                      wall s     cells/s    CPU s  (sys s, page faults)   alpha")
    for name, r in rows.items():
        alpha = "" if r.get("alpha") is None else f"{r['alpha']:.9f}"
        print(f"  {name:38s} {r['seconds']:8.2f} {r['cells'] / r['seconds']:11.2f} {r['cpu s']:8.2f}  "
              f"({r['system s']:.2f}, {r['page faults']:>9})   {alpha}")
    for name, v in ratios.items():
        print(f"  {name:66s} {v:.3f}")
    return {"settings": vars(args) | {"json": str(args.json)}, "load": loads, "rows": rows,
            "ratios": ratios}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.bare:
        bare_process(args)
        return 0
    before = os.getloadavg()[0]
    rows = measure(args)
    out = report(args, rows, (before, os.getloadavg()[0]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
