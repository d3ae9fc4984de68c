"""How many logit matrices the real-model ledger computes, with shared forwards and without (issue 32, item 2).

    .venv/bin/python benchmarks/count_shared_matrices.py [--model tiny] [--n 32]

Runs the matrix claims of the N = 256 ledger (LEDGER_RULES.md) at toy size in one process, with the column
path forced (as for SmolLM2 and Gemma-3 above 2²⁸ bytes of full-vocabulary matrix), twice:

* **shared** (the code as it is): one in-process memo across claims, ``prefetch`` asking several column
  choices of one L(H, F) in one forward, a top-k matrix sliced from a wider top-k′ one;
* **separate** (before issue 32): each claim computes its own matrices, one forward per column choice.

Prints, per claim, the forwards (matrices) and cells (histories × futures) each way, and the totals. The
counts depend on the claims' structure, not on N: cells scale as N².
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from logitrank.verify.claims import CheckConfig, run_check
from logitrank.verify.claims.checks import _real_claims, _real_setup, _real_structure_claims

CLAIMS = ("E6", "E9", "E1", "E3", "E7", "E5", "E2")


def _sizes(n: int) -> dict:
    return {"n": n, "n_checkpoint": n, "min_chars": 8, "max_chars": 24, "k": 20}


def count(model: str, n: int, shared: bool) -> list[tuple[str, str, int, int]]:
    """[(claim, verdict, forwards, cells)] for one pass over :data:`CLAIMS`."""
    rows = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        stack.enter_context(mock.patch.object(_real_setup, "FULL_MATRIX_BYTES", 0))
        stack.enter_context(mock.patch.dict(_real_setup._MEMO, clear=True))
        if not shared:
            for module in (_real_claims, _real_structure_claims, _real_setup):
                if hasattr(module, "prefetch"):
                    stack.enter_context(mock.patch.object(module, "prefetch", lambda *a, **k: None))
            stack.enter_context(mock.patch.object(_real_setup, "_from_wider_top", lambda *a, **k: None))
        for cid in CLAIMS:
            if not shared:
                _real_setup._MEMO.clear()
            before = dict(_real_setup.matrix_stats())
            out = Path(tmp) / (cid if not shared else "shared")  # separate: no disk cache shared either
            config = CheckConfig(scale="full", seeds=1, model=model, out_dir=str(out), overrides=_sizes(n))
            result = run_check(cid, config)
            after = _real_setup.matrix_stats()
            rows.append((cid, result.verdict, after["matrices"] - before["matrices"], after["cells"] - before["cells"]))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--n", type=int, default=32)
    args = ap.parse_args(argv)
    separate, shared = count(args.model, args.n, False), count(args.model, args.n, True)
    print(f"{args.model}, n = {args.n}, column path forced, one seed")
    print(f"  {'claim':<6}{'verdict':<10}{'forwards separate':>18}{'forwards shared':>17}{'cells separate':>16}{'cells shared':>14}")
    for (cid, verdict, f0, c0), (_, _, f1, c1) in zip(separate, shared):
        print(f"  {cid:<6}{verdict:<10}{f0:>18}{f1:>17}{c0:>16}{c1:>14}")
    tot = [sum(r[i] for r in rows) for rows in (separate, shared) for i in (2, 3)]
    print(f"  {'total':<16}{tot[0]:>18}{tot[2]:>17}{tot[1]:>16}{tot[3]:>14}")
    print(f"  shared / separate: forwards {tot[2] / max(tot[0], 1):.2f}, cells {tot[3] / max(tot[1], 1):.2f}")


if __name__ == "__main__":
    main()
