"""``logitrank sweep run|show|plot``: run a TOML spec, summarise and plot its stored rows.

    logitrank sweep run SPEC.toml [--jobs N] [--store PATH] [--backend loky|dask --scheduler ADDRESS]
                                  [--retry-failed] [--recompute] [--allow-import-task]
                                  [--dry-run | --estimate [--probe N] [--probe-seconds S]] [--progress-every SECONDS]
    logitrank sweep show [NAME] [--store PATH] [--metrics tv_truth queries] [--csv PATH]
    logitrank sweep plot [NAME] --x d --y tv_truth [--hue V] [--col F] [--row F] [--pool F ...]
                         [--xscale auto|linear|log] [--yscale ...] [--heatmap] [--where key=value ...] [--out DIR]

``--dry-run`` runs nothing (no model, no task): it lists the rows (their count and the first ten) and
prices them from the store's timings of earlier runs (:mod:`logitrank.verify.experiments.sweep._estimate`).
``--estimate`` is the dry run plus a probe: up to ``--probe`` cells run once, one seed each, not stored,
none started after ``--probe-seconds``. A run on a terminal draws a bar; in a log it writes one progress
line every ``--progress-every`` seconds through :mod:`logging`, and no bar (:mod:`._progress`).

Exit status of ``run``: 0 when every row is done, 1 when a row failed (this run, or kept from an
earlier one), 2 for usage errors found before any work (bad spec, a cell its task rejects, an
unregistered task, a damaged store or row), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import warnings
from pathlib import Path

from logitrank._validation import UsageError

from .._store import DEFAULT_STORE
from ._progress import Ticker, duration, is_terminal, log_to_stderr, quiet_bars

__all__ = ["add_parser", "run"]

#: seconds between progress lines when stderr is not a terminal
PROGRESS_EVERY_S = 20.0


def add_parser(sub) -> argparse.ArgumentParser:
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
    run.add_argument("--retry-failed", action="store_true",
                     help="rerun rows that failed in an earlier run (default: a failed row is kept as a result)")
    run.add_argument("--no-retry", action="store_true",
                     help="deprecated: keeping failed rows is now the default (see --retry-failed)")
    run.add_argument("--recompute", action="store_true",
                     help="recompute stored rows that are damaged (digest mismatch) or failed")
    run.add_argument("--allow-import-task", action="store_true",
                     help="let the spec's task be any 'package.module:function' (it is imported and run: "
                          "only for specs you trust); default: registered tasks only")
    run.add_argument("--dry-run", action="store_true",
                     help="run nothing: print the row count, the first ten rows, the cached rows and a time "
                          "estimated from stored timings of earlier runs; store nothing")
    run.add_argument("--estimate", action="store_true",
                     help="the dry run plus a probe: up to --probe cells run once (one seed each, not stored) to "
                          "time the rows no stored timing prices; no cell starts after --probe-seconds")
    run.add_argument("--probe", type=int, default=None, metavar="N",
                     help="with --estimate: most cells the probe runs (default 20, at most a quarter of them)")
    run.add_argument("--probe-seconds", type=float, default=None, metavar="S",
                     help="with --estimate: no probe cell starts after S seconds (default 60)")
    run.add_argument("--progress-every", type=float, default=PROGRESS_EVERY_S, metavar="SECONDS",
                     help=f"seconds between progress lines when stderr is not a terminal (default {PROGRESS_EVERY_S:g})")
    show = ssub.add_parser("show", help="median and spread over seeds of every cell")
    show.add_argument("name", nargs="?", help="sweep name (default: the only or latest sweep in the store)")
    show.add_argument("--store", type=Path, default=DEFAULT_STORE, metavar="PATH", help=store_help)
    show.add_argument("--metrics", nargs="+", default=None, metavar="M",
                      help="metrics to show (default: every metric with a value in some row, and seconds)")
    show.add_argument("--csv", type=Path, default=None, metavar="PATH", help="also write the summary as CSV")
    plot = ssub.add_parser("plot", help="median with bars over seeds per (x, hue), one panel per value of the rest")
    plot.add_argument("name", nargs="?", help="sweep name (default: the latest sweep in the store)")
    plot.add_argument("--store", type=Path, default=DEFAULT_STORE, metavar="PATH", help=store_help)
    plot.add_argument("--x", required=True, help="parameter on the x axis")
    plot.add_argument("--y", required=True, help="metric on the y axis (colour of a heatmap), e.g. tv_truth")
    plot.add_argument("--hue", default=None, help="parameter with one line per value (heatmap rows)")
    plot.add_argument("--col", default=None, help="parameter with one column of panels per value")
    plot.add_argument("--row", default=None, help="parameter with one row of panels per value")
    plot.add_argument("--pool", nargs="+", default=[], metavar="F",
                      help="parameters to pool over instead of faceting (default: every varying parameter is faceted)")
    plot.add_argument("--xscale", choices=["auto", "linear", "log"], default="auto", help="default: from the data")
    plot.add_argument("--yscale", choices=["auto", "linear", "log"], default="auto", help="default: from the data")
    plot.add_argument("--heatmap", action="store_true", help="heatmap of the median over (x, hue)")
    plot.add_argument("--where", nargs="+", default=[], metavar="KEY=VALUE",
                      help="keep rows with these values (named in the title and the file name)")
    plot.add_argument("--out", type=Path, default=None, metavar="DIR", help="figure folder (default figures/ beside the store)")
    return sweep


def _latest(store: Path, name: str | None) -> str:
    from ..experiments.sweep._store import SweepStoreError, open_store, sweep_names

    if store.is_dir():
        raise UsageError(f"--store {store} is a directory; give the results database file")
    if not store.is_file():
        raise UsageError(f"--store {store} does not exist; run `logitrank sweep run SPEC.toml --store {store}` first")
    try:
        conn = open_store(store, create=False)
        try:
            names = sweep_names(conn)
        finally:
            conn.close()
    except (SweepStoreError, RuntimeError) as err:
        raise UsageError(str(err))
    if name is None:
        if not names:
            raise UsageError(f"the store {store} holds no sweep")
        return names[-1]
    if name not in names:
        raise UsageError(f"sweep {name!r} is not in {store}; it holds {names}")
    return name


class _Progress:
    """Progress of one run: a tqdm bar on a terminal, else one line through logging every ``every`` seconds.

    Counts rows done, failed and cached; the rate and the ETA count computed rows only (cached rows
    arrive at once and would make a resumed run look fast). Starts at the first row, so a run
    refused before any row prints nothing but its error.
    """

    def __init__(self, name: str, total: int, *, every: float, terminal: bool | None = None):
        self.name, self.total, self.every = name, total, every
        self.terminal = is_terminal() if terminal is None else terminal
        self.counts = {"done": 0, "failed": 0, "cached": 0}
        self.lock = threading.Lock()
        self.t0 = self.bar = self.ticker = None

    def _start(self) -> None:
        self.t0 = time.monotonic()
        if self.terminal:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=f"sweep {self.name}", unit="row", file=sys.stderr, disable=False)
        else:
            self.ticker = Ticker(self.line, self.every).start()

    def line(self) -> str:
        with self.lock:
            c = dict(self.counts)
        elapsed = time.monotonic() - (self.t0 or time.monotonic())
        computed = c["done"] + c["failed"]
        left = self.total - computed - c["cached"]
        rate = computed / elapsed if computed and elapsed > 0 else None
        eta = left / rate if rate else None
        return (f"sweep {self.name}: {computed + c['cached']}/{self.total} rows ({c['done']} done, {c['failed']} failed, "
                f"{c['cached']} cached); {f'{rate * 60:.3g} rows/min computed' if rate else 'no row computed yet'}; "
                f"elapsed {duration(elapsed)}; ETA {duration(eta) if eta is not None else '?'}")

    def __call__(self, status: str) -> None:
        if self.t0 is None:
            self._start()
        with self.lock:
            self.counts[status] += 1
        if self.bar is not None:
            if status == "cached":  # not work: leave the bar's rate to computed rows
                self.bar.total -= 1
                self.bar.refresh()
            else:
                self.bar.update(1)
            self.bar.set_postfix(self.counts, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.ticker is not None:
            self.ticker.stop()


def _run_options(args):
    """The spec and engine of ``sweep run``, every option checked (UsageError naming it) before any work."""
    from ..experiments.sweep._engine import Engine
    from ..experiments.sweep._spec import load_spec

    if args.no_retry:
        print("note: --no-retry is deprecated and has no effect: failed rows are kept by default now; "
              "--retry-failed reruns them", file=sys.stderr)
    if args.dry_run and args.estimate:
        raise UsageError("--dry-run and --estimate: choose one (--estimate is the dry run plus a probe)")
    for option, value in (("--probe", args.probe), ("--probe-seconds", args.probe_seconds)):
        if value is not None and not args.estimate:
            raise UsageError(f"{option} goes with --estimate (--dry-run runs nothing, so it has no probe)")
    if args.probe is not None and args.probe < 1:
        raise UsageError(f"--probe must be an integer >= 1 (cells the probe runs); got {args.probe}")
    if args.probe_seconds is not None and not args.probe_seconds > 0:
        raise UsageError(f"--probe-seconds must be > 0; got {args.probe_seconds}")
    if not args.progress_every > 0:
        raise UsageError(f"--progress-every must be > 0 seconds; got {args.progress_every}")
    if args.store.is_dir():
        raise UsageError(f"--store {args.store} is a directory; give the results database file (e.g. {args.store / 'logitrank.sqlite'})")
    try:
        spec = load_spec(args.spec)
        engine = Engine(jobs=args.jobs, backend=args.backend, scheduler=args.scheduler, threads=args.threads,
                        retry_failed=args.retry_failed, recompute=args.recompute)
    except (TypeError, ValueError, FileNotFoundError) as err:
        raise UsageError(str(err))
    return spec, engine


def _cmd_run(args) -> int:
    from ..experiments.sweep._engine import SweepCellWarning, run_sweep
    from ..experiments.sweep._store import DamagedRowError, SweepStoreError

    spec, engine = _run_options(args)
    if args.dry_run or args.estimate:
        return _dry_run(spec, engine, args)
    log_to_stderr()
    progress = _Progress(spec.name, sum(len(c.seeds) for c in spec.cells()), every=args.progress_every)
    try:
        with warnings.catch_warnings(record=True) as caught, quiet_bars():
            warnings.simplefilter("always", SweepCellWarning)
            result = run_sweep(spec, store=args.store, engine=engine, progress=progress,
                               allow_import_task=args.allow_import_task)
        for w in caught:
            if issubclass(w.category, SweepCellWarning):
                print(f"note: {w.message} (`logitrank sweep show {spec.name} --store {args.store}`)", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    except (TypeError, ValueError, DamagedRowError, SweepStoreError, RuntimeError) as err:
        progress.close()
        raise UsageError(str(err))
    except KeyboardInterrupt:
        progress.close()
        print(f"\ninterrupted; finished rows are kept in {args.store} (rerun to resume)", file=sys.stderr)
        return 130
    progress.close()
    print(f"sweep {result.name}: {result.done} done, {result.failed} failed, {result.cached} cached "
          f"of {result.total} in {result.seconds:.1f}s → {args.store}")
    if result.first_error is not None:
        print(f"first failure: {result.first_error}", file=sys.stderr)
    if result.kept_failed:
        print(f"{result.kept_failed} failed row(s) kept from an earlier run (rerun them with --retry-failed; "
              f"see `logitrank sweep show {result.name} --store {args.store}`)", file=sys.stderr)
    return 0 if result.failed == 0 and result.kept_failed == 0 else 1


#: rows a dry run lists
DRY_RUN_ROWS = 10


def _print_rows(est) -> None:
    """The rows a run would compute: their count and the first :data:`DRY_RUN_ROWS`, the keys that vary as
    columns and the rest once."""
    import pandas as pd

    def text(v) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    rows = pd.DataFrame([{**{k: text(v) for k, v in config.items()}, "seed #": i} for config, i, _ in est.todo_rows])
    if rows.empty:
        return
    keys = [c for c in rows.columns if c != "seed #" and rows[c].nunique() > 1]
    fixed = ", ".join(f"{c}={rows[c].iloc[0]}" for c in rows.columns if c != "seed #" and c not in keys)
    if fixed:
        print(f"same in every row: {fixed}")
    shown = min(DRY_RUN_ROWS, len(rows))
    print(f"the first {shown} of {len(rows)} rows to compute (grid order; a run takes them in a shuffled order; "
          "seed # is the row's seed among its cell's):")
    head = rows[keys + ["seed #"]].head(shown).astype(str)
    head.index = range(1, shown + 1)
    print(head.to_string())


def _estimate_basis(est, probing: bool) -> str:
    """Where the estimate comes from, in words."""
    basis = []
    if est.from_stored:
        basis.append(f"{est.from_stored} row(s) from stored timings of the same task and configuration")
    if est.from_nearest:
        basis.append(f"{est.from_nearest} row(s) from stored timings of the nearest configuration of the same "
                     "task (rough: a larger V or T can cost far more; `--estimate` probes instead)")
    if est.probed:
        basis.append(f"{est.todo - est.from_stored} from a probe of {est.probed} cell(s), run once in "
                     f"{duration(est.probe_seconds)} and not stored")
    elif probing:
        basis.append("no probe needed")
    return "; ".join(basis)


def _dry_run(spec, engine, args) -> int:
    from ..experiments.sweep._estimate import DEFAULT_PROBE, DEFAULT_PROBE_SECONDS, estimate_sweep
    from ..experiments.sweep._store import DamagedRowError, SweepStoreError

    probe = (DEFAULT_PROBE if args.probe is None else args.probe) if args.estimate else 0
    budget = DEFAULT_PROBE_SECONDS if args.probe_seconds is None else args.probe_seconds
    if args.estimate:
        print(f"--estimate: rows without a stored timing are priced by a probe of up to {probe} cell(s), one seed "
              f"each, run in this process and not stored; no probe cell starts after {duration(budget)}", flush=True)
    try:
        with quiet_bars():
            est = estimate_sweep(spec, store=args.store, engine=engine, allow_import_task=args.allow_import_task,
                                 probe=probe, probe_seconds=budget)
    except (TypeError, ValueError, DamagedRowError, SweepStoreError, RuntimeError) as err:
        raise UsageError(str(err))
    what = "a probe ran; nothing stored" if est.probed else "nothing computed or stored"
    print(f"sweep {est.name} ({'estimate' if args.estimate else 'dry run'}: {what}): {est.cells} cells × "
          f"{spec.seeds} seeds = {est.total} rows; {est.cached} cached in {args.store}, {est.todo} to compute")
    _print_rows(est)
    if est.todo == 0:
        print("estimated time: 0s (every row is cached)")
        return 0
    if est.seconds is None:
        print(f"estimated time: unknown: {est.todo - est.from_stored} row(s) have no stored timing of task "
              f"{spec.task!r} in {args.store} to price them; `--estimate` times a probe of up to {DEFAULT_PROBE} "
              f"cells (one seed each, not stored; none started after {duration(DEFAULT_PROBE_SECONDS)})")
        return 0
    print(f"estimated time: {duration(est.seconds)} with {est.jobs} worker(s) (rows sum to "
          f"{duration(est.row_seconds)}; {_estimate_basis(est, args.estimate)}; assumes idle cores)")
    return 0


def _cmd_show(args) -> int:
    import pandas as pd

    from ..experiments.sweep._store import DamagedRowError, SweepStoreError, load, summarize
    from ..experiments.sweep._table import sweep_table, table_pages

    name = _latest(args.store, args.name)
    try:
        df = load(args.store, name)
    except (DamagedRowError, SweepStoreError) as err:
        raise UsageError(str(err))
    if df.empty:
        raise UsageError(f"sweep {name!r} has no rows in {args.store}")
    try:
        table = sweep_table(df, metrics=args.metrics)
    except ValueError as err:
        raise UsageError(str(err))
    print(f"sweep {name} ({args.store}): {len(table.frame)} cells")
    for line in table.header_lines():
        print(f"  {line}")
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        for page in table_pages(table):  # a few metrics at a time, each page with the grid keys
            print()
            print(page.to_string(index=False))
    warned = df[df["warnings"].notna()]
    if len(warned):
        print(f"\n{len(warned)} row(s) raised warnings; first: {warned['warnings'].iloc[0].splitlines()[0]}")
    failed = df[df["status"] == "failed"]
    if len(failed):
        print(f"\n{len(failed)} failed row(s); first error: {failed['error'].iloc[0]}")
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        summarize(df, metrics=table.metrics).to_csv(args.csv, index=False)
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


def _cmd_plot(args) -> int:
    from ..experiments.sweep._store import DamagedRowError, SweepStoreError, load
    from ..figures._sweep import plot_sweep

    name = _latest(args.store, args.name)
    where = {}
    for item in args.where:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--where takes KEY=VALUE items; got {item!r}")
        where[key] = _parse_value(value)
    try:
        df = load(args.store, name)
    except (DamagedRowError, SweepStoreError) as err:
        raise UsageError(str(err))
    out = args.out if args.out is not None else args.store.parent / "figures"
    try:
        paths = plot_sweep(df, x=args.x, y=args.y, hue=args.hue, col=args.col, row=args.row, pool=args.pool,
                           heatmap=args.heatmap, where=where, out_dir=out, xscale=args.xscale, yscale=args.yscale)
    except ValueError as err:
        raise UsageError(str(err))
    print(f"figure written to {paths[0]} and {paths[1]}")
    return 0


def run(args) -> int:
    """Dispatch ``logitrank sweep <run|show|plot>``."""
    return {"run": _cmd_run, "show": _cmd_show, "plot": _cmd_plot}[args.sweep_command](args)
