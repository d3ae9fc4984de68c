"""``logitrank list``: the ledger's claims, and which have a registered check."""

from __future__ import annotations

import argparse

from ..claims import LEDGER, load_plugin, registered

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``list`` on an argparse subparsers object."""
    p = sub.add_parser("list", help="list the ledger's claims and which have checks")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE (dotted name or .py file) first, so its claims are listed; repeatable")
    return p


def run(args) -> int:
    """Print one line per ledger claim: ID, whether a check is registered, statement and source."""
    from logitrank._validation import UsageError

    for spec in args.plugin:
        try:
            load_plugin(spec)
        except ValueError as err:
            raise UsageError(str(err)) from None
    have = set(registered())
    print(f"{'ID':<5} {'check':<6} claim (source)")
    for cid, claim in LEDGER.items():
        print(f"{cid:<5} {'yes' if cid in have else '-':<6} {claim.statement} ({claim.source})")
    return 0
