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
import importlib
import sys
from importlib import metadata

from logitrank._validation import UsageError

from .check import DEFAULT_JSON

__all__ = ["COMMANDS", "DEFAULT_JSON", "main"]

#: each subcommand and the module (of this package) that implements it with ``add_parser(sub)`` and
#: ``run(args) -> int``; a bad option raises :class:`~logitrank._validation.UsageError`, which
#: :func:`main` reports as one line and exit status 2
COMMANDS = {"check": "check", "spectrum": "spectrum", "serve": "serve", "sweep": "sweep", "list": "ledger",
            "runs": "runs", "report": "report", "train-tiny": "train"}


def _version() -> str:
    try:
        return metadata.version("logitrank")
    except metadata.PackageNotFoundError:
        return "unknown"


def _module(command: str):
    return importlib.import_module(f".{COMMANDS[command]}", __name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logitrank", description="Executable checks of the low-logit-rank papers.")
    parser.add_argument("--version", action="version", version=f"logitrank {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        _module(command).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``logitrank ARGV``; returns the exit status. A usage error — argparse's or a command's
    :class:`~logitrank._validation.UsageError` — prints one line on stderr and exits with status 2
    (``SystemExit(2)``, as argparse does), before any work."""
    args = _parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        return _module(args.command).run(args)
    except UsageError as err:
        print(f"logitrank {args.command}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    sys.exit(main())
