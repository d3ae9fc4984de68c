"""The ``logitrank`` command line.

    logitrank check [IDS ...] [--scale quick|full] [--seed N] [--json PATH] [--model NAME]
    logitrank list
    logitrank train-tiny [--out DIR] [--runs a b] [--steps N] [--threads N]

Exit status of ``check``: 0 when every requested claim holds, 1 when any fails or is not run,
2 for usage errors (unknown ID, bad option).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from ._ledger import LEDGER
from ._registry import CheckConfig, ClaimResult, registered, run_check

DEFAULT_JSON = Path("results") / "checks.json"


def _version() -> str:
    try:
        return metadata.version("logitrank")
    except metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logitrank", description="Executable checks of the low-logit-rank papers.")
    parser.add_argument("--version", action="version", version=f"logitrank {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run claim checks and write JSON results")
    check.add_argument("ids", nargs="*", metavar="ID", help="claim IDs (default: every registered check)")
    check.add_argument("--scale", choices=["quick", "full"], default="quick", help="problem sizes (default quick)")
    check.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    check.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                       help=f"results file (default {DEFAULT_JSON}); figures go to figures/ beside it")
    check.add_argument("--threads", type=int, default=1, metavar="N",
                       help="torch CPU threads (default 1: checks run many small ops, which extra threads slow down)")
    check.add_argument("--model", default="tiny", metavar="NAME",
                       help="language model of the real-model checks E1–E11: tiny (default), tiny@stepN, smollm2, "
                            "or a Hugging Face name / local folder")
    sub.add_parser("list", help="list the ledger's claims and which have checks")
    train = sub.add_parser("train-tiny", help="train the tiny byte-level GPT on Shakespeare and write its checkpoints")
    train.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="output folder (default: the package's verify/data/tiny, used by --model tiny)")
    train.add_argument("--runs", nargs="+", default=["a", "b"], choices=["a", "b"],
                       help="a = 'tiny' (checkpoints across training), b = 'tiny-b' (default both)")
    train.add_argument("--steps", type=int, default=None, help="override the number of steps (smoke runs)")
    train.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")
    return parser


def _headline(result: ClaimResult, width: int = 70) -> str:
    """The first scalar figures of a result, shortened to one table cell."""
    parts = [f"{k}={_fmt(v)}" for k, v in result.figures.items() if isinstance(v, (int, float, str))]
    text = "; ".join(parts) if parts else result.reason.splitlines()[0] if result.reason else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _write_json(path: Path, results: list[ClaimResult], config: CheckConfig) -> None:
    """Rewrite the whole file atomically, so an interrupted run keeps every finished check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"scale": config.scale, "seed": config.seed, "model": config.model, "version": _version()}
    rows = [{**r.to_dict(), **meta} for r in results]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=2, default=str))
    os.replace(tmp, path)


def _cmd_list() -> int:
    have = set(registered())
    print(f"{'ID':<5} {'check':<6} claim (source)")
    for cid, claim in LEDGER.items():
        print(f"{cid:<5} {'yes' if cid in have else '-':<6} {claim.statement} ({claim.source})")
    return 0


def _cmd_check(args, parser) -> int:
    unknown = [i for i in args.ids if i not in LEDGER]
    if unknown:
        parser.error(f"unknown claim id(s) {', '.join(unknown)}; known: {', '.join(LEDGER)}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0; got {args.seed}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    config = CheckConfig(scale=args.scale, seed=args.seed, out_dir=str(args.json.parent), model=args.model)
    ids = list(dict.fromkeys(args.ids)) or registered()
    from tqdm import tqdm

    results: list[ClaimResult] = []
    try:
        bar = tqdm(ids, desc="checks", unit="claim", file=sys.stderr, disable=None)
        for cid in bar:
            bar.set_postfix_str(cid)
            results.append(run_check(cid, config))
            _write_json(args.json, results, config)
    except KeyboardInterrupt:
        print(f"\ninterrupted; {len(results)} finished result(s) kept in {args.json}", file=sys.stderr)
        return 130
    print(f"{'ID':<5} {'verdict':<8} {'time':>7}  figures")
    for r in results:
        print(f"{r.id:<5} {r.verdict:<8} {r.seconds:>6.1f}s  {_headline(r)}")
        if r.verdict != "holds" and r.reason:
            print(f"      reason: {r.reason.splitlines()[0]}")
    print(f"results written to {args.json}")
    return 0 if all(r.verdict == "holds" for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        return _cmd_list()
    if args.command == "train-tiny":
        from ._train_cli import cmd_train_tiny

        return cmd_train_tiny(args, parser)
    return _cmd_check(args, parser)


if __name__ == "__main__":
    sys.exit(main())
