"""The same requests to vLLM's OpenAI server and to `logitrank serve`, side by side (issue 33, item 3).

    .venv/bin/python tools/conformance.py [--vllm-url URL] [--out docs/vllm-conformance.md]

Serves the tiny model both ways: ours in this process (``serve_app(load_model("tiny"))`` +
``running_server``, as ``logitrank serve --model tiny`` does), vLLM 0.32 on the tiny model exported as a
GPT-2 folder (tools/vllm_fixture.py; started through tools/vllm_serve.sh and stopped at the end, unless
``--vllm-url`` names one already running with the flags of tools/vllm_serve.sh and
``--max-model-len 64``). Every case sends one request body (or a few) to both and describes what came
back; the table is written to ``--out`` (Markdown). The prompt is [104, 101] ("he") unless a case says
otherwise: valid for both servers (ours refuses the start token 256, outside its vocabulary).

Needs the vLLM virtualenv (tools/vllm_env.sh) unless ``--vllm-url`` is given.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [104, 101]
BOS = 256


def _request(base: str, method: str, path: str, body: dict | None = None, timeout: float = 60.0) -> tuple[int, object]:
    """(status, parsed JSON or text) of one HTTP request to ``base`` (the server root, without /v1)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json", "authorization": "Bearer EMPTY"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Server:
    """One side of the comparison: ``complete(**fields)`` posts to /v1/completions with the tiny defaults."""

    def __init__(self, name: str, root: str):
        self.name, self.root = name, root

    def send(self, method: str, path: str, body: dict | None = None):
        return _request(self.root, method, path, body)

    def complete(self, **fields):
        body = {"model": "tiny", "prompt": PROMPT, "max_tokens": 1, **fields}
        return self.send("POST", "/v1/completions", body)


def _error(status: int, body) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = str(body["error"].get("message", ""))
    elif isinstance(body, dict) and "detail" in body:
        message = str(body["detail"])
    else:
        message = str(body)
    message = " ".join(message.split())
    return f"{status}: {message[:150]}{'…' if len(message) > 150 else ''}"


def _top(choice: dict, position: int = 0) -> dict[str, float]:
    lp = choice.get("logprobs") or {}
    tops = lp.get("top_logprobs") or []
    return (tops[position] or {}) if len(tops) > position else {}


def _ids(top: dict) -> dict[int, float]:
    out = {}
    for name, value in top.items():
        out[int(name.split(":")[1]) if name.startswith("token_id:") else name] = value
    return out


def _completion_ids(body) -> list:
    return [c.get("text") for c in body.get("choices", [])]


@dataclass
class Case:
    """One row: ``run(server)`` returns (cell text, comparable outcome); ``todo`` says what ours should do."""

    field: str
    sent: str
    run: Callable[[Server], tuple[str, object]]
    todo: str


def _plain(status, body, describe) -> tuple[str, object]:
    if status != 200:
        return _error(status, body), ("refused", status)
    return describe(body)


def _case_baseline(s: Server):
    status, body = s.complete(logprobs=5, temperature=0)
    return _plain(status, body, lambda b: (f"200: top-5 ids {sorted(_ids(_top(b['choices'][0])))}", "top-5 ids"))


def _case_bos(s: Server):
    """The top-5 log-probabilities after [104, 101], and after [256, 104, 101] where the server takes it."""
    plain = s.complete(logprobs=5, temperature=0)
    explicit = s.complete(prompt=[BOS, *PROMPT], logprobs=5, temperature=0)
    lp = {k: v for k, v in _ids(_top(plain[1]["choices"][0])).items()}
    first = max(lp, key=lp.get)
    text = f"top token after [104, 101]: {first} ({lp[first]:.4f})"
    if explicit[0] == 200:
        lp2 = _ids(_top(explicit[1]["choices"][0]))
        best = max(lp2, key=lp2.get)
        text += f"; after [256, 104, 101]: {best} ({lp2[best]:.4f})"
    else:
        text += f"; [256, 104, 101]: {_error(*explicit)}"
    return text, None


def _case_bias(s: Server):
    status, body = s.complete(logprobs=3, temperature=0, logit_bias={"7": 100})
    def describe(b):
        top = _ids(_top(b["choices"][0]))
        return (f"200: lp(7) = {top.get(7, float('nan')):.4f}, completion {_completion_ids(b)} (after the bias)",
                "after the bias")
    return _plain(status, body, describe)


def _case_bias_over_limit(s: Server):
    a = s.complete(logprobs=2, temperature=0, logit_bias={"7": 100})
    b = s.complete(logprobs=2, temperature=0, logit_bias={"7": 150})
    if b[0] != 200:
        return _error(*b), ("refused", b[0])
    la, lb = _ids(_top(a[1]["choices"][0])), _ids(_top(b[1]["choices"][0]))
    other = next(t for t in la if t != 7)
    moved = la[other] - lb.get(other, float("nan"))
    kind = "clamped to 100" if abs(moved) < 1e-3 else "applied"
    return f"200: accepted, {kind} (lp of token {other} moved by {moved:.3f} from +100 to +150)", kind


def _case_temperature_sampling(s: Server):
    outs = []
    for _ in range(8):
        status, body = s.complete(temperature=1.0)
        if status != 200:
            return _error(status, body), ("refused", status)
        outs += _completion_ids(body)
    distinct = sorted(set(outs))
    kind = "samples" if len(distinct) > 1 else "one completion"
    return f"200: {len(distinct)} distinct completions in 8 requests {distinct[:6]}", kind


def _case_temperature_logprobs(s: Server):
    cold = s.complete(logprobs=5, temperature=0)
    warm = s.complete(logprobs=5, temperature=0.5)
    if warm[0] != 200:
        return _error(*warm), ("refused", warm[0])
    a, b = _ids(_top(cold[1]["choices"][0])), _ids(_top(warm[1]["choices"][0]))
    common = [t for t in a if t in b]
    t1, t2 = sorted(common, key=lambda t: -a[t])[:2]
    ratio = (b[t1] - b[t2]) / (a[t1] - a[t2])
    kind = "tempered" if abs(ratio - 2) < 0.05 else "untempered" if abs(ratio - 1) < 0.05 else f"ratio {ratio:.2f}"
    return f"200: lp gaps ×{ratio:.3f} of temperature 0's ({kind})", kind


def _case_seed(s: Server):
    outs = {}
    for seed in (1, 1, 2, 3, 4, 5, 6, 7):
        status, body = s.complete(temperature=1.0, seed=seed)
        if status != 200:
            return _error(status, body), ("refused", status)
        outs.setdefault(seed, []).append(tuple(_completion_ids(body)))
    repeat = outs[1][0] == outs[1][1]
    distinct = len({v[0] for v in outs.values()})
    return (f"200: seed 1 twice {'the same' if repeat else 'different'}; {distinct} distinct over seeds 1–7",
            (repeat, distinct > 1))


def _case_top_p(s: Server):
    status, body = s.complete(logprobs=5, temperature=1.0, top_p=0.05)
    def describe(b):
        vals = sorted(_ids(_top(b["choices"][0])).values(), reverse=True)
        masked = sum(v <= -9000 for v in vals)
        return (f"200: top-5 lps {[round(v, 3) for v in vals]}" + (f" ({masked} masked to -9999)" if masked else ""),
                "masked" if masked else "unmasked")
    return _plain(status, body, describe)


def _case_penalty(s: Server):
    a = s.complete(logprobs=5, temperature=0)
    b = s.complete(logprobs=5, temperature=0, repetition_penalty=2.0)
    if b[0] != 200:
        return _error(*b), ("refused", b[0])
    la, lb = _ids(_top(a[1]["choices"][0])), _ids(_top(b[1]["choices"][0]))
    moved = max(abs(la[t] - lb[t]) for t in la if t in lb)
    kind = "applied" if moved > 1e-4 else "ignored"
    return f"200: top-5 lps moved by up to {moved:.4f} ({kind})", kind


def _case_stop(s: Server):
    status, body = s.complete(max_tokens=8, temperature=0, stop=[" "])
    return _plain(status, body, lambda b: (f"200: {_completion_ids(b)}, finish_reason {b['choices'][0]['finish_reason']}",
                                           "stops"))


def _case_max_tokens(s: Server):
    status, body = s.complete(max_tokens=5, temperature=0, logprobs=1)
    def describe(b):
        tokens = len(b["choices"][0]["logprobs"]["tokens"])
        return f"200: {tokens} tokens {_completion_ids(b)}, usage {b['usage']['completion_tokens']}", "5 tokens"
    return _plain(status, body, describe)


def _case_n(s: Server):
    status, body = s.complete(n=3, temperature=1.0)
    return _plain(status, body, lambda b: (f"200: {len(b['choices'])} choices {_completion_ids(b)}", "3 choices"))


def _case_echo(s: Server):
    status, body = s.complete(echo=True, logprobs=2, temperature=0)
    def describe(b):
        lp = b["choices"][0]["logprobs"]
        sizes = ["null" if t is None else len(t) for t in lp["top_logprobs"]]
        return f"200: text {b['choices'][0]['text']!r}, {len(lp['tokens'])} tokens, top_logprobs {sizes}", "echo"
    return _plain(status, body, describe)


def _case_prompt_logprobs(s: Server):
    status, body = s.complete(logprobs=1, temperature=0, prompt_logprobs=5)
    def describe(b):
        rows = b["choices"][0].get("prompt_logprobs")
        if rows is None:
            return "200: no prompt_logprobs in the answer (field ignored)", "ignored"
        return f"200: prompt_logprobs per position {['null' if r is None else len(r) for r in rows]}", "given"
    return _plain(status, body, describe)


def _token_id_order(choice: dict, asked: list[int]) -> tuple[str, list]:
    """(what the top_logprobs of a logprob_token_ids answer hold, their ids in order)."""
    order = [k for k in _ids(_top(choice)) if isinstance(k, int)]
    names = (choice.get("logprobs") or {}).get("tokens") or []
    chosen = _ids({names[0]: 0.0}).popitem()[0] if names else None
    if order == list(dict.fromkeys([chosen, *asked])):
        return "the completion's token, then the ids in the order named", order
    return ("the ids named, in another order" if set(asked) <= set(order) else "ignored (top-k only)"), order


def _case_logprob_token_ids(s: Server):
    asked = [1, 2, 3, 200]
    status, body = s.complete(logprobs=1, temperature=0, logprob_token_ids=asked)
    def describe(b):
        kind, order = _token_id_order(b["choices"][0], asked)
        return f"200: ids {order}: {kind}", kind
    return _plain(status, body, describe)


def _case_token_ids_limit(s: Server):
    status, body = s.complete(logprobs=1, temperature=0, logprob_token_ids=list(range(129)))
    return _plain(status, body, lambda b: (f"200: {len(_top(b['choices'][0]))} log-probabilities", "accepted"))


def _case_token_ids_without_logprobs(s: Server):
    status, body = s.complete(temperature=0, logprob_token_ids=[1, 2])
    return _plain(status, body, lambda b: ("200: accepted", "accepted"))


def _case_token_ids_logprobs_over_limit(s: Server):
    asked = [1, 2]
    status, body = s.complete(logprobs=21, temperature=0, logprob_token_ids=asked)
    def describe(b):
        kind, order = _token_id_order(b["choices"][0], asked)
        return f"200: logprobs=21 accepted; ids {order}: {kind}", kind
    return _plain(status, body, describe)


def _case_token_ids_out_of_vocab(s: Server):
    status, body = s.complete(logprobs=1, temperature=0, logprob_token_ids=[1, 5000])
    return _plain(status, body, lambda b: ("200: accepted", "accepted"))


def _case_token_ids_bias(s: Server):
    status, body = s.complete(logprobs=1, temperature=0, logprob_token_ids=[7, 9], logit_bias={"7": 100})
    def describe(b):
        top = _ids(_top(b["choices"][0]))
        kind = "after the bias" if abs(top.get(7, -1.0)) < 1e-3 else "before the bias"
        return f"200: lp(7) = {top.get(7, float('nan')):.4f}, lp(9) = {top.get(9, float('nan')):.2f} ({kind})", kind
    return _plain(status, body, describe)


def _case_token_ids_batch(s: Server):
    asked = [1, 2]
    status, body = s.complete(prompt=[PROMPT, [116, 104]], logprobs=1, temperature=0, logprob_token_ids=asked)
    def describe(b):
        kinds = [_token_id_order(c, asked)[0] for c in b["choices"]]
        return (f"200: choices {[c['index'] for c in b['choices']]}, each {kinds[0]}",
                (len(kinds), len(set(kinds)), kinds[0]))
    return _plain(status, body, describe)


def _case_token_names(s: Server):
    status, body = s.complete(logprobs=2, temperature=0, return_tokens_as_token_ids=False)
    def describe(b):
        names = list(_top(b["choices"][0]))
        kind = "texts" if not any(n.startswith("token_id:") for n in names) else "token_id:N"
        return f"200: tokens named {names}", kind
    return _plain(status, body, describe)


def _case_text_prompt(s: Server):
    status, body = s.complete(prompt="he", logprobs=2, temperature=0)
    return _plain(status, body, lambda b: (f"200: top {sorted(_ids(_top(b['choices'][0])))} (tokenised)", "tokenised"))


def _case_batch(s: Server):
    status, body = s.complete(prompt=[PROMPT, [116, 104]], logprobs=1, temperature=0)
    return _plain(status, body, lambda b: (f"200: {len(b['choices'])} choices, {b['usage']['prompt_tokens']} tokens billed",
                                           "batched"))


def _case_stream(s: Server):
    status, body = s.complete(stream=True)
    if status != 200:
        return _error(status, body), ("refused", status)
    kind = "events" if isinstance(body, str) and body.startswith("data:") else "other"
    return f"200: server-sent events ({body.count('data:')} events)" if kind == "events" else f"200: {body!r:.80}", kind


def _case_unknown(s: Server):
    status, body = s.complete(logprobs=1, temperature=0, frobnicate=1)
    return _plain(status, body, lambda b: ("200: accepted, field ignored", "ignored"))


def _case_k_limit(s: Server):
    status, body = s.complete(logprobs=21)
    return _plain(status, body, lambda b: ("200: accepted", "accepted"))


def _case_wrong_model(s: Server):
    status, body = s.complete(model="tinyy")
    return _plain(status, body, lambda b: ("200: accepted", "accepted"))


def _case_long_prompt(s: Server):
    status, body = s.complete(prompt=[1] * 64)
    return _plain(status, body, lambda b: ("200: accepted", "accepted"))


def _case_health(s: Server):
    status, body = s.send("GET", "/health")
    return (f"{status}" + ("" if status == 200 else f": {_error(status, body)[5:]}"), status)


def _case_models(s: Server):
    status, body = s.send("GET", "/v1/models")
    if status != 200:
        return _error(status, body), ("refused", status)
    card = body["data"][0]
    keys = [k for k in ("vocab_size", "max_model_len", "top_logprobs_limit", "bias_limit", "aliases") if k in card]
    return f"200: id {card['id']!r}; {', '.join(f'{k}={card[k]}' for k in keys)}", "card"


def _case_chat(s: Server):
    status, body = s.send("POST", "/v1/chat/completions",
                          {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    return _plain(status, body, lambda b: ("200: answered", "answered"))


CASES = [
    Case("logprobs (k=5), temperature 0", "`logprobs: 5, temperature: 0`", _case_baseline,
         "(the numbers differ by the start token: next row)"),
    Case("token-id prompt (start token)", "`prompt: [104, 101]`, then `[256, 104, 101]`", _case_bos,
         "one BOS convention (item 2): ours answers [104, 101] as [256, 104, 101]; vLLM as sent"),
    Case("logit_bias", "`logit_bias: {\"7\": 100}, logprobs: 3`", _case_bias, ""),
    Case("logit_bias over 100", "`logit_bias: {\"7\": 150}`", _case_bias_over_limit,
         "keep the 400 (vLLM clamps silently; the client stays within 100)"),
    Case("temperature > 0", "`temperature: 1`, 8 requests", _case_temperature_sampling,
         "sample from softmax(logits/T), or 400 naming `temperature`"),
    Case("temperature and logprobs", "`temperature: 0.5, logprobs: 5`", _case_temperature_logprobs,
         "return log_softmax(logits/T) (vLLM's processed_logprobs), or 400 for T ∉ {0, 1}"),
    Case("seed", "`temperature: 1, seed: s`, s = 1, 1, 2, …, 7", _case_seed,
         "seeded sampling (same seed, same completion), or 400 naming `seed`"),
    Case("top_p", "`temperature: 1, top_p: 0.05, logprobs: 5`", _case_top_p,
         "mask outside the nucleus as vLLM (-9999), or 400 naming `top_p`"),
    Case("repetition_penalty (vLLM)", "`repetition_penalty: 2, logprobs: 5`", _case_penalty,
         "400 naming the field (it changes processed log-probabilities)"),
    Case("stop", "`stop: [\" \"], max_tokens: 8`", _case_stop, "implement with max_tokens > 1, or 400 (today: 400)"),
    Case("max_tokens > 1", "`max_tokens: 5, logprobs: 1`", _case_max_tokens, "greedy/sampled continuation, or 400"),
    Case("n > 1", "`n: 3, temperature: 1`", _case_n, "n choices, or 400 (today: 400)"),
    Case("echo", "`echo: true, logprobs: 2`", _case_echo, "prompt tokens with their top-k (before the bias), or 400"),
    Case("prompt_logprobs (vLLM)", "`prompt_logprobs: 5`", _case_prompt_logprobs,
         "top-k per prompt position (before the bias), or 400 naming the field — never accepted and ignored"),
    Case("logprob_token_ids (vLLM)", "`logprob_token_ids: [1, 2, 3, 200], logprobs: 1`", _case_logprob_token_ids,
         "the chosen ids' log-probabilities (≤ 128), or 400 — never accepted and ignored (done: issue 33, item 4)"),
    Case("logprob_token_ids over 128", "`logprob_token_ids: [0 … 128]` (129 ids), `logprobs: 1`",
         _case_token_ids_limit, "400 naming the field, the length and the limit"),
    Case("logprob_token_ids without logprobs", "`logprob_token_ids: [1, 2]`", _case_token_ids_without_logprobs,
         "400: logprobs must be set"),
    Case("logprob_token_ids, logprobs above the limit", "`logprob_token_ids: [1, 2], logprobs: 21`",
         _case_token_ids_logprobs_over_limit, "the ids' log-probabilities (logprobs unbounded then)"),
    Case("logprob_token_ids outside the vocabulary", "`logprob_token_ids: [1, 5000], logprobs: 1`",
         _case_token_ids_out_of_vocab, "400 naming the field"),
    Case("logprob_token_ids and logit_bias", "`logprob_token_ids: [7, 9], logit_bias: {\"7\": 100}`",
         _case_token_ids_bias, "after the bias (processed log-probabilities)"),
    Case("logprob_token_ids, batched prompts", "`prompt: [[104, 101], [116, 104]], logprob_token_ids: [1, 2]`",
         _case_token_ids_batch, "one choice per prompt, each with the ids"),
    Case("return_tokens_as_token_ids (vLLM)", "`return_tokens_as_token_ids: false`", _case_token_names,
         "400 naming the field, or honour it"),
    Case("text prompt", "`prompt: \"he\"`", _case_text_prompt, "tokenise with the model's tokenizer, or 400 (today)"),
    Case("batched prompts", "`prompt: [[104, 101], [116, 104]]`", _case_batch, ""),
    Case("stream", "`stream: true`", _case_stream, "server-sent events, or 400 (today)"),
    Case("unknown field", "`frobnicate: 1`", _case_unknown, "400 naming the field (vLLM ignores it silently)"),
    Case("logprobs above the limit", "`logprobs: 21`", _case_k_limit, ""),
    Case("unknown model", "`model: \"tinyy\"`", _case_wrong_model, ""),
    Case("prompt as long as the context", "64 tokens (tiny's context: 64 positions)", _case_long_prompt, ""),
    Case("GET /health", "", _case_health, "200 when ready"),
    Case("GET /v1/models", "", _case_models, ""),
    Case("POST /v1/chat/completions", "one user message", _case_chat, "404 or 400 naming the route (fine)"),
]


def compare(ours: Server, vllm: Server) -> list[dict]:
    rows = []
    for case in CASES:
        v_text, v_key = case.run(vllm)
        o_text, o_key = case.run(ours)
        same = v_key is not None and v_key == o_key
        rows.append({"field": case.field, "sent": case.sent, "vllm": v_text, "ours": o_text,
                     "same": "same" if same else "differs", "todo": case.todo})
    return rows


def markdown(rows: list[dict], vllm_note: str) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [
        "# vLLM's OpenAI server and `logitrank serve`: the same requests",
        "",
        "Generated by `tools/conformance.py` (issue 33, item 3); do not edit. The tiny model served both ways:",
        f"{vllm_note}; ours `serve_app(load_model(\"tiny\"))` (as `logitrank serve --model tiny`).",
        "Prompt `[104, 101]` and `max_tokens: 1` unless the row says otherwise. *same* compares what",
        "each answer means (refused / ignored / applied …), not the numbers, except where the cell says so.",
        "The last column is what `logitrank serve` must do to speak vLLM's dialect or refuse (item 3).",
        "",
        "| field | sent | vLLM 0.32 | `logitrank serve` | | ours should |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append("| " + " | ".join(cell(r[k]) for k in ("field", "sent", "vllm", "ours", "same", "todo")) + " |")
    return "\n".join(lines) + "\n"


def _load_fixture():
    spec = importlib.util.spec_from_file_location("logitrank_tools_vllm_fixture", ROOT / "tools" / "vllm_fixture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


VLLM_NOTE = ("vLLM 0.32.0 (CPU) on the tiny model exported as a GPT-2 folder (tools/vllm_fixture.py), started by "
             "tools/vllm_serve.sh: `--dtype float32 --max-logprobs 20 --logprobs-mode processed_logprobs "
             "--return-tokens-as-token-ids --enforce-eager --max-model-len 64`")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--vllm-url", help="the /v1 root of a vLLM server on the tiny model (default: start one)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "vllm-conformance.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from logitrank.verify.models import load_model, running_server, serve_app

    torch.set_num_threads(1)
    with running_server(serve_app(load_model("tiny"), name="tiny")) as ours_url:
        ours = Server("ours", ours_url.removesuffix("/v1"))
        if args.vllm_url:
            rows = compare(ours, Server("vllm", args.vllm_url.rstrip("/").removesuffix("/v1")))
        else:
            fixture = _load_fixture()
            folder = fixture.export_tiny(ROOT / "build" / "vllm-models" / "tiny")
            with fixture.vllm_server(folder, "tiny", "--max-model-len", "64") as server:
                rows = compare(ours, Server("vllm", server.url.removesuffix("/v1")))
    args.out.write_text(markdown(rows, VLLM_NOTE))
    width = max(len(r["field"]) for r in rows)
    for r in rows:
        print(f"{r['field']:<{width}}  {r['same']:<7}  vLLM: {r['vllm']}\n{'':<{width}}           ours: {r['ours']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
