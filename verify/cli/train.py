"""``logitrank train-tiny``: retrain the stored tiny models (progress on stderr)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from logitrank._validation import UsageError


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``train-tiny`` on an argparse subparsers object."""
    train = sub.add_parser("train-tiny", help="train the tiny byte-level GPT on Shakespeare and write its checkpoints")
    train.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="output folder (default: the package's verify/data/tiny, used by --model tiny)")
    train.add_argument("--runs", nargs="+", default=["a", "b"], choices=["a", "b", "mid"],
                       help="a = 'tiny' (checkpoints across training), b = 'tiny-b' (default both), "
                            "mid = the mid-size preset (issue 15; ~40 min)")
    train.add_argument("--steps", type=int, default=None, help="override the number of steps (smoke runs)")
    train.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")
    return train


def run(args) -> int:
    """Train the runs named in ``args.runs`` into ``args.out`` (default: the package's data folder)."""
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1; got {args.threads}")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1; got {args.steps}")
    import torch
    from tqdm import tqdm

    from ..models import TINY_DIR, CorpusUnavailable
    from ..models._train import train_tiny_runs

    torch.set_num_threads(args.threads)
    out = args.out or TINY_DIR
    bars = []

    def factory(run, total):
        bar = tqdm(total=total, desc=f"train tiny run {run}", unit="step", file=sys.stderr, disable=None)
        bars.append(bar)

        def update(step, loss):
            bar.update(1)
            if step % 25 == 0:
                bar.set_postfix_str(f"loss {loss:.3f}")
        return update

    try:
        manifests = train_tiny_runs(out, args.runs, steps=args.steps, progress_factory=factory)
    except CorpusUnavailable as err:
        raise UsageError(str(err)) from None
    except KeyboardInterrupt:
        print("\ninterrupted; checkpoints written so far are kept", file=sys.stderr)
        return 130
    finally:
        for bar in bars:
            bar.close()
    for run, m in manifests.items():
        last = m["checkpoints"][-1]
        size = sum(c["bytes"] for c in m["checkpoints"])
        print(f"run {run}: {m['params']} parameters, {m['seconds']} s, {m['tokens_per_second']} tokens/s, "
              f"held-out loss {last['held_out_loss']:.3f} at step {last['step']}, "
              f"{len(m['checkpoints'])} checkpoints, {size / 1e6:.2f} MB → {out / run}")
    return 0
