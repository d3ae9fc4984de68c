"""``logitrank report``: the claims report and the README's claims table from stored results."""

from __future__ import annotations

import argparse
from pathlib import Path

from logitrank._validation import UsageError

from .check import DEFAULT_JSON as DEFAULT_RESULTS  # the export `logitrank check` writes
from .ledger import load_plugins


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("report", help="write report.md and report.html from stored results (and the README table)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="PATH",
                   help=f"results written by `logitrank check` (default {DEFAULT_RESULTS})")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="where the report goes (default: beside the results)")
    p.add_argument("--readme", type=Path, default=None, metavar="PATH",
                   help="also regenerate the claims table of this README (between its generated-table markers)")
    p.add_argument("--sweep", action="append", default=[], metavar="NAME",
                   help="also write a section for this sweep (repeatable): <out>/sweeps/NAME.md and .html")
    p.add_argument("--store", type=Path, default=None, metavar="PATH",
                   help="with --sweep: the sweeps' store (default logitrank.sqlite beside --results)")
    p.add_argument("--metrics", nargs="+", default=None, metavar="M",
                   help="with --sweep: the metrics its table shows (default every metric with a value)")
    p.add_argument("--check-readme", action="store_true",
                   help="with --readme: write nothing, exit 1 when the README's table differs from the results")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE (dotted name or .py file) first, so the report shows its claims' statements, "
                        "sources and rules; repeatable")
    return p


def run(args) -> int:
    """Write the report (and the README's table, the sweeps' sections) of ``args``; 0, or 1 for a stale README."""
    from ..claims._report import load_results, update_readme, write_report

    if args.check_readme and args.readme is None:
        raise UsageError("--check-readme needs --readme PATH")
    if args.metrics is not None and not args.sweep:
        raise UsageError("--metrics goes with --sweep NAME (it chooses the sweep table's metrics)")
    load_plugins(args.plugin)
    if not args.results.is_file():
        raise UsageError(f"--results {str(args.results)!r} is not a file; run `logitrank check` first")
    if args.readme is not None and not args.readme.is_file():
        raise UsageError(f"--readme {str(args.readme)!r} is not a file")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {str(args.out)!r} exists and is not a folder")
    try:
        rows, _ = load_results(args.results)
    except ValueError as err:
        raise UsageError(str(err))
    if args.readme is not None:
        try:
            stale = update_readme(args.readme, rows, check=args.check_readme)
        except ValueError as err:
            raise UsageError(str(err))
        if args.check_readme:
            print(f"{args.readme}: claims table is {'stale' if stale else 'up to date'}")
            return 1 if stale else 0
        print(f"{args.readme}: claims table {'regenerated' if stale else 'already up to date'}")
    md, page = write_report(args.results, args.out)
    print(f"report written to {md} and {page}")
    if args.sweep:
        from ..experiments._sweep_report import write_sweep_report

        store = args.store or args.results.parent / "logitrank.sqlite"
        if not store.is_file():
            raise UsageError(f"--store {str(store)!r} is not a file (the sweeps' SQLite store)")
        for name in args.sweep:
            try:
                s_md, s_page = write_sweep_report(store, name, args.out or args.results.parent, metrics=args.metrics)
            except ValueError as err:
                raise UsageError(f"--sweep {name!r}: {err}")
            print(f"sweep {name}: {s_md} and {s_page}")
    return 0


