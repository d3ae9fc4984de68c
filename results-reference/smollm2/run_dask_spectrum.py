"""α at a larger N for SmolLM2 on a local Dask cluster, resumable across sessions (issue 26).

    .venv/bin/python results-reference/smollm2/run_dask_spectrum.py --n 256 [--workers 2] [--dtype bfloat16]

Starts a LocalCluster of ``--workers`` single-threaded processes (each loads SmolLM2 once) and runs
``logitrank spectrum --backend dask`` into ``spectrum-n<N>/`` (``spectrum-n<N>-bf16/`` with
``--dtype bfloat16``; under ``seed<S>/`` with ``--seed S``). Every finished slice of the futures is
checkpointed under ``spectrum-n<N>/dask/`` (committed), so a killed run — or the next session —
continues where it stopped; the same command finishes it. Point ``--scheduler`` at a real cluster to
go faster.
"""

import argparse
import sys
from pathlib import Path

from logitrank.verify.cli import main as logitrank

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="an existing Dask scheduler instead of a local cluster")
    ap.add_argument("--slices", type=int, default=None,
                    help="equal slices per segment (default: the local path's chunks, bit-equal to a local run)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--seed", type=int, default=0, help="seed of the corpus cut (seed S ≠ 0 writes under seedS/)")
    return ap.parse_args(argv)


def spectrum_argv(args: argparse.Namespace) -> list[str]:
    """The ``logitrank spectrum`` command line of the run, less ``--scheduler`` (tests/test_recipes.py runs it
    with ``--show-config``, so a renamed option fails CI rather than the run)."""
    out = (HERE / f"seed{args.seed}" if args.seed else HERE) / (f"spectrum-n{args.n}" + ("-bf16" if args.dtype == "bfloat16" else ""))
    slices = [] if args.slices is None else ["--slices", str(args.slices)]
    return ["spectrum", "--model", "smollm2", "--corpus", "shakespeare", "--n", str(args.n), "--backend", "dask",
            *slices, "--threads", "1", "--dtype", args.dtype, "--seed", str(args.seed), "--out", str(out)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common = spectrum_argv(args)
    if args.scheduler:
        return logitrank([*common, "--scheduler", args.scheduler])
    import distributed  # here, not at the top: importing the recipe stays cheap

    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        return logitrank([*common, "--scheduler", cluster.scheduler_address])


if __name__ == "__main__":
    sys.exit(main())
