"""``logitrank sweep run|show|plot``: run a TOML spec, summarise and plot its stored rows.

    logitrank sweep run SPEC.toml [--jobs N] [--store PATH] [--backend loky|dask --scheduler ADDRESS]
    logitrank sweep show [NAME] [--store PATH] [--metrics tv queries] [--csv PATH]
    logitrank sweep plot [NAME] --x d --y tv [--hue V] [--heatmap] [--where key=value ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._store import DEFAULT_STORE

__all__ = ["add_sweep_parser", "cmd_sweep"]


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    """Add the ``sweep`` command (with run / show / plot) to an argparse subparsers object."""
    sweep = sub.add_parser("sweep", help="run, show and plot sensitivity sweeps (grid × seeds over a task)")
    ssub = sweep.add_subparsers(dest="sweep_command", required=True)
    store_help = f"results database (default {DEFAULT_STORE})"
    run = ssub.add_parser("run", help="run the cells of a TOML spec that the store does not hold yet")
    run.add_argument("spec", type=Path, metavar="SPEC.toml")
    run.add_argument("--jobs", type=int, default=1, metavar="N", help="parallel workers (default 1; -1 = all cores)")
    run.add_argument("--store", type=Path, default=DEFAULT_STORE, metavar="PATH", help=store_help)
    run.add_argument("--backend", choices=["loky", "dask"], default="loky",
                     help="loky: processes on this machine (default); dask: a distributed cluster")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address (with --backend dask)")
    run.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads per cell (default 1)")
    run.add_argument("--no-retry", action="store_true", help="keep failed rows instead of rerunning them")
    show = ssub.add_parser("show", help="median and IQR over seeds of every cell")
    show.add_argument("name", nargs="?", help="sweep name (default: the only or latest sweep in the store)")
    show.add_argument("--store", type=Path, default=DEFAULT_STORE, metavar="PATH", help=store_help)
    show.add_argument("--metrics", nargs="+", default=None, metavar="M", help="metrics to show (default all)")
    show.add_argument("--csv", type=Path, default=None, metavar="PATH", help="also write the summary as CSV")
    plot = ssub.add_parser("plot", help="median line with IQR band (or a heatmap) of one metric")
    plot.add_argument("name", nargs="?", help="sweep name (default: the latest sweep in the store)")
    plot.add_argument("--store", type=Path, default=DEFAULT_STORE, metavar="PATH", help=store_help)
    plot.add_argument("--x", required=True, help="parameter on the x axis")
    plot.add_argument("--y", required=True, help="metric on the y axis (colour of a heatmap)")
    plot.add_argument("--hue", default=None, help="parameter with one line per value (heatmap rows)")
    plot.add_argument("--heatmap", action="store_true", help="heatmap of the median over (x, hue)")
    plot.add_argument("--where", nargs="+", default=[], metavar="KEY=VALUE", help="keep rows with these values")
    plot.add_argument("--out", type=Path, default=None, metavar="DIR", help="figure folder (default figures/ beside the store)")
    return sweep


def _latest(store: Path, name: str | None, parser) -> str:
    from ._store import open_store, sweep_names

    if not store.is_file():
        parser.error(f"--store {store} does not exist; run `logitrank sweep run SPEC.toml --store {store}` first")
    conn = open_store(store)
    try:
        names = sweep_names(conn)
    finally:
        conn.close()
    if name is None:
        if not names:
            parser.error(f"the store {store} holds no sweep")
        return names[-1]
    if name not in names:
        parser.error(f"sweep {name!r} is not in {store}; it holds {names}")
    return name


def _cmd_run(args, parser) -> int:
    from tqdm import tqdm

    from ._engine import Engine, run_sweep
    from ._spec import load_spec

    try:
        spec = load_spec(args.spec)
        engine = Engine(jobs=args.jobs, backend=args.backend, scheduler=args.scheduler, threads=args.threads,
                        retry_failed=not args.no_retry)
    except (TypeError, ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    total = sum(len(c.seeds) for c in spec.cells())
    counts = {"done": 0, "failed": 0, "cached": 0}
    bar = tqdm(total=total, desc=f"sweep {spec.name}", unit="cell", file=sys.stderr, disable=None)

    def progress(status: str) -> None:
        counts[status] += 1
        bar.update(1)
        bar.set_postfix(counts, refresh=False)

    try:
        result = run_sweep(spec, store=args.store, engine=engine, progress=progress)
    except ValueError as err:
        bar.close()
        parser.error(str(err))
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted; finished rows are kept in {args.store} (rerun to resume)", file=sys.stderr)
        return 130
    bar.close()
    print(f"sweep {result.name}: {result.done} done, {result.failed} failed, {result.cached} cached "
          f"of {result.total} in {result.seconds:.1f}s → {args.store}")
    return 0 if result.failed == 0 else 1


def _cmd_show(args, parser) -> int:
    import pandas as pd

    from ._store import load, summarize

    name = _latest(args.store, args.name, parser)
    df = load(args.store, name)
    unknown = [m for m in args.metrics or [] if m not in df.attrs["metric_columns"] + ["seconds"]]
    if unknown:
        parser.error(f"--metrics {unknown} not in sweep {name!r}; it has {df.attrs['metric_columns'] + ['seconds']}")
    table = summarize(df, metrics=args.metrics)
    metrics = args.metrics or df.attrs["metric_columns"] + ["seconds"]
    cols = [c for c in df.attrs["config_columns"] if table[c].nunique() > 1] + ["seeds", "failed"]
    view = table[cols].copy()
    for m in metrics:
        view[m] = [f"{a:.3g} [{b:.3g}, {c:.3g}]" for a, b, c in zip(table[m], table[f"{m}_q25"], table[f"{m}_q75"])]
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        print(f"sweep {name} ({args.store}): median [IQR] over seeds")
        print(view.to_string(index=False))
    warned = df[df["warnings"].notna()]
    if len(warned):
        print(f"\n{len(warned)} row(s) raised warnings; first: {warned['warnings'].iloc[0].splitlines()[0]}")
    failed = df[df["status"] == "failed"]
    if len(failed):
        print(f"\n{len(failed)} failed row(s); first error: {failed['error'].iloc[0]}")
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
        print(f"summary written to {args.csv}")
    return 0


def _parse_value(text: str):
    """'4' → 4, '1e-3' → 0.001, 'true' → True, anything else stays a string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _cmd_plot(args, parser) -> int:
    from ._plot import plot_sweep
    from ._store import load

    name = _latest(args.store, args.name, parser)
    where = {}
    for item in args.where:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--where takes KEY=VALUE items; got {item!r}")
        where[key] = _parse_value(value)
    df = load(args.store, name)
    out = args.out if args.out is not None else args.store.parent / "figures"
    try:
        paths = plot_sweep(df, x=args.x, y=args.y, hue=args.hue, heatmap=args.heatmap, where=where, out_dir=out)
    except ValueError as err:
        parser.error(str(err))
    print(f"figure written to {paths[0]} and {paths[1]}")
    return 0


def cmd_sweep(args, parser) -> int:
    """Dispatch ``logitrank sweep <run|show|plot>``."""
    return {"run": _cmd_run, "show": _cmd_show, "plot": _cmd_plot}[args.sweep_command](args, parser)
