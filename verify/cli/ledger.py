"""``logitrank list``: the ledger's claims, and which have a registered check."""

from __future__ import annotations

import argparse

from ..claims import LEDGER, load_plugin, registered

__all__ = ["add_parser", "load_plugins", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``list`` on an argparse subparsers object."""
    p = sub.add_parser("list", help="list the ledger's claims and which have checks")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE (dotted name or .py file) first, so its claims are listed; repeatable")
    return p


def load_plugins(specs) -> None:
    """Import every ``--plugin`` module (so its claims join the ledger); a bad one is a usage error naming it."""
    from logitrank._validation import UsageError

    for spec in specs:
        try:
            load_plugin(spec)
        except ValueError as err:
            raise UsageError(f"--{err}" if str(err).startswith("plugin ") else str(err)) from None


def run(args) -> int:
    """Print one line per ledger claim: ID, whether a check is registered, statement and source (a plugin's
    claims after the built-in ones)."""
    load_plugins(args.plugin)
    have = set(registered())
    width = max(5, *(len(cid) for cid in LEDGER))
    print(f"{'ID':<{width}} {'check':<6} claim (source)")
    for cid, claim in LEDGER.items():
        print(f"{cid:<{width}} {'yes' if cid in have else '-':<6} {claim.statement} ({claim.source})")
    return 0
