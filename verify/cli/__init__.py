"""The ``logitrank`` command line.

    logitrank check [IDS ...] [--scale quick|full] [--seed N] [--seeds N] [--json PATH] [--store PATH]
                    [--resume] [--strict] [--threads N] [--model NAME] [--plugin MODULE]
    logitrank spectrum [--model M] [--corpus PATH|NAME] [--n N] [--k K] [--lengths A:B] [--device D] [--dtype T] [--scale paper]
    logitrank list
    logitrank runs [--store PATH] [--last N]
    logitrank train-tiny [--out DIR] [--runs a b] [--steps N] [--threads N]

Exit status of ``check``: 0 when the run completed (whatever the verdicts), 1 with ``--strict`` when
any requested claim does not hold, 2 for usage errors (unknown ID, bad option, unusable path or
model; found before any work), 130 when interrupted. See :mod:`logitrank.verify.cli.check`.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from ..claims._ledger import LEDGER
from ..claims._registry import registered
from . import report as _report_cli
from .check import DEFAULT_JSON, add_check_arguments, add_runs_parser, cmd_check, cmd_runs

__all__ = ["DEFAULT_JSON", "main"]


def _version() -> str:
    try:
        return metadata.version("logitrank")
    except metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logitrank", description="Executable checks of the low-logit-rank papers.")
    parser.add_argument("--version", action="version", version=f"logitrank {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run claim checks, keep run records, export JSON results")
    add_check_arguments(check)
    from .spectrum import add_parser as _add_spectrum

    _add_spectrum(sub)
    from .serve import add_parser as _add_serve

    _add_serve(sub)
    from .sweep import add_sweep_parser

    add_sweep_parser(sub)
    sub.add_parser("list", help="list the ledger's claims and which have checks")
    add_runs_parser(sub)
    _report_cli.add_parser(sub)
    train = sub.add_parser("train-tiny", help="train the tiny byte-level GPT on Shakespeare and write its checkpoints")
    train.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="output folder (default: the package's verify/data/tiny, used by --model tiny)")
    train.add_argument("--runs", nargs="+", default=["a", "b"], choices=["a", "b", "mid"],
                       help="a = 'tiny' (checkpoints across training), b = 'tiny-b' (default both), mid = the mid-size preset (issue 15; ~40 min)")
    train.add_argument("--steps", type=int, default=None, help="override the number of steps (smoke runs)")
    train.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")
    return parser


def _cmd_list() -> int:
    have = set(registered())
    print(f"{'ID':<5} {'check':<6} claim (source)")
    for cid, claim in LEDGER.items():
        print(f"{cid:<5} {'yes' if cid in have else '-':<6} {claim.statement} ({claim.source})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report_cli.run(args, parser)
    if args.command == "list":
        return _cmd_list()
    if args.command == "runs":
        return cmd_runs(args, parser)
    if args.command == "serve":
        from .serve import run as _run_serve

        return _run_serve(args)
    if args.command == "spectrum":
        from .spectrum import run as _run_spectrum

        return _run_spectrum(args)
    if args.command == "sweep":
        from .sweep import cmd_sweep

        return cmd_sweep(args, parser)
    if args.command == "train-tiny":
        from .train import cmd_train_tiny

        return cmd_train_tiny(args, parser)
    return cmd_check(args, parser, argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
