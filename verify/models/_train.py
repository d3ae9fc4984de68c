"""Training the tiny byte-level GPT on Shakespeare, with checkpoints across training (issue 7).

The checkpoints serve paper A's questions about training: the untrained model (E2, Fig 6d), the
KL-to-low-rank curve over training (E4, Fig 3), an earlier checkpoint as a LinGen baseline (E10,
Fig 5) and spectral decay as a diagnostic of progress (X5).

A run is fully described by :class:`TrainConfig`; it is saved in every checkpoint and in
``manifest.json`` beside them. Checkpoint weights are stored in float16 (half the size; the
network is evaluated in float32 after loading), so the stored model *is* the rounded one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from logitrank._validation import check_int, check_real

from ._tiny import BOS_ID, TinyConfig, TinyGPT

__all__ = ["DEFAULT_CHECKPOINTS", "TINY_TRAINING", "TrainConfig", "encode_bytes", "train_tiny", "train_tiny_runs"]

#: Steps at which a checkpoint is written (the final step is always added).
DEFAULT_CHECKPOINTS = (0, 10, 30, 100, 300, 1000)


@dataclass(frozen=True)
class TrainConfig:
    """One training run of the tiny model.

    Attributes
    ----------
    model : TinyConfig
    steps : int
        Optimiser steps.
    batch_size : int
        Windows per step; each window has ``model.block_size`` target bytes.
    lr, min_lr : float
        Peak and final learning rate (linear warm-up, cosine decay).
    warmup : int
        Warm-up steps.
    weight_decay : float
        AdamW decay on matrices (not on biases, LayerNorm or embeddings).
    seed : int
        Initialisation and batch order.
    checkpoints : tuple of int
        Steps to save (the last step is always saved).
    eval_batches : int
        Held-out batches per loss evaluation (at each checkpoint).
    """

    model: TinyConfig = field(default_factory=TinyConfig)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: int = 50
    weight_decay: float = 0.1
    seed: int = 0
    checkpoints: tuple = DEFAULT_CHECKPOINTS
    eval_batches: int = 16

    def __post_init__(self):
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("warmup", self.warmup, minimum=0)
        check_int("seed", self.seed, minimum=0)
        check_int("eval_batches", self.eval_batches, minimum=1)
        check_real("lr", self.lr, low=0, low_open=True)
        check_real("min_lr", self.min_lr, low=0, high=self.lr)
        check_real("weight_decay", self.weight_decay, low=0)
        for s in self.checkpoints:
            check_int("checkpoints[...]", s, minimum=0, maximum=self.steps)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["checkpoints"] = list(self.checkpoints)
        return d


def encode_bytes(texts) -> np.ndarray:
    """Concatenate texts (separated by a blank line) into one uint8 byte stream."""
    return np.frombuffer("\n\n".join(texts).encode("utf-8"), dtype=np.uint8).copy()


def _batch(data: np.ndarray, block: int, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: inputs [BOS] + w[:-1], targets w, each (batch, block)."""
    starts = rng.integers(0, len(data) - block + 1, size=batch_size)
    w = torch.from_numpy(np.stack([data[s : s + block] for s in starts]).astype(np.int64))  # (b, block)
    x = torch.cat([torch.full((batch_size, 1), BOS_ID, dtype=torch.long), w[:, :-1]], dim=1)  # (b, block)
    return x, w


@torch.no_grad()
def _held_out_loss(net: TinyGPT, data: np.ndarray, cfg: TrainConfig) -> float:
    """Mean next-byte cross-entropy (nats) on ``eval_batches`` fixed held-out windows."""
    rng = np.random.default_rng(12345)  # the same windows at every checkpoint
    net.eval()
    total = 0.0
    for _ in range(cfg.eval_batches):
        x, y = _batch(data, cfg.model.block_size, cfg.batch_size, rng)
        logits, _ = net(x)  # (b, block, 256)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))
    net.train()
    return total / cfg.eval_batches


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, frac)))


def _save(net: TinyGPT, path: Path, step: int, cfg: TrainConfig, extra: dict) -> dict:
    weights = {k: v.detach().to(torch.float16).clone() for k, v in net.state_dict().items()}
    torch.save({"config": asdict(cfg.model), "step": step, "weights": weights, "train": cfg.to_dict(), **extra}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"step": step, "file": path.name, "bytes": path.stat().st_size, "sha256": digest, **extra}


def train_tiny(train_data: np.ndarray, held_out: np.ndarray, out_dir, cfg: TrainConfig = TrainConfig(), *, progress=None) -> dict:
    """Train a :class:`TinyGPT` on a byte stream and write checkpoints plus ``manifest.json``.

    Steps: 1. initialise from ``cfg.seed``; 2. AdamW on random windows with warm-up and cosine
    decay, gradient norm clipped to 1; 3. at each checkpoint step (before that step's update, so
    step 0 is the initialisation) measure the held-out loss and save float16 weights.

    Parameters
    ----------
    train_data, held_out : (N,) uint8 arrays
        Byte streams (see :func:`encode_bytes`).
    out_dir : path
        Receives ``step{S:05d}.pt`` files and ``manifest.json``.
    cfg : TrainConfig
    progress : callable(step, loss), optional
        Called after every step (the CLI passes a tqdm update).

    Returns
    -------
    dict
        The manifest: config, per-checkpoint step / losses / file size / sha256, tokens per second.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    block = cfg.model.block_size
    for name, data in (("train_data", train_data), ("held_out", held_out)):
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(f"{name} must be a 1-D uint8 numpy array of bytes; got {type(data).__name__}")
        if len(data) < block + 1:
            raise ValueError(f"{name} must hold at least block_size + 1 = {block + 1} bytes; got {len(data)}")
    # 1. Initialise.
    torch.manual_seed(cfg.seed)  # entry point: dropout-free model, but keep torch's global state reproducible
    net = TinyGPT(cfg.model, generator=torch.Generator().manual_seed(cfg.seed))
    decay = [p for n, p in net.named_parameters() if p.ndim == 2 and not n.startswith(("wte", "wpe"))]
    rest = [p for n, p in net.named_parameters() if not (p.ndim == 2 and not n.startswith(("wte", "wpe")))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(cfg.seed)
    saves = sorted(set(cfg.checkpoints) | {cfg.steps})
    entries, recent, t0 = [], [], time.perf_counter()
    net.train()
    for step in range(cfg.steps + 1):
        # 3. Checkpoint before the update of this step.
        if step in saves:
            extra = {"held_out_loss": _held_out_loss(net, held_out, cfg),
                     "train_loss": float(np.mean(recent[-50:])) if recent else float("nan"),
                     "tokens_seen": step * cfg.batch_size * block, "seconds": round(time.perf_counter() - t0, 2)}
            entries.append(_save(net, out / f"step{step:05d}.pt", step, cfg, extra))
        if step == cfg.steps:
            break
        # 2. One optimiser step.
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        x, y = _batch(train_data, block, cfg.batch_size, rng)
        logits, _ = net(x)  # (b, block, 256)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        recent.append(float(loss.detach()))
        if progress is not None:
            progress(step, recent[-1])
    seconds = time.perf_counter() - t0
    manifest = {
        "train": cfg.to_dict(),
        "params": net.n_params(),
        "train_bytes": len(train_data),
        "held_out_bytes": len(held_out),
        "seconds": round(seconds, 1),
        "tokens_per_second": round(cfg.steps * cfg.batch_size * block / seconds),
        "torch_threads": torch.get_num_threads(),
        "checkpoints": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


#: The stored runs: "a" is the model called "tiny" (checkpoints across training), "b" is "tiny-b",
#: a second model of another shape and seed (final weights only) for cross-model comparisons.
TINY_TRAINING = {
    "a": TrainConfig(model=TinyConfig(n_layer=2, n_head=4, n_embd=96, block_size=64), seed=0),
    "b": TrainConfig(model=TinyConfig(n_layer=3, n_head=4, n_embd=64, block_size=64), seed=1, checkpoints=()),
    # Issue 15 item 3, a mid-size model CI could still afford: 4 layers × 192 (about 1.9M parameters,
    # 3.7 MB per float16 checkpoint), 128-byte windows, log-spaced checkpoints from the initialisation.
    # Not trained or stored yet: a 4-step smoke run measured ~1.3 s of CPU per step on one thread,
    # so ~35 minutes of CPU for 1500 steps (`logitrank train-tiny --runs mid --out DIR`); six float16
    # checkpoints would take 23 MB, over the repo's 15 MB, so only some could be stored.
    "mid": TrainConfig(model=TinyConfig(n_layer=4, n_head=6, n_embd=192, block_size=128), steps=1500, seed=2,
                       checkpoints=(0, 10, 30, 100, 300, 1000)),
}


def train_tiny_runs(out_dir, runs=("a", "b"), *, steps: int | None = None, progress_factory=None) -> dict:
    """Train the stored tiny runs on Shakespeare (all plays but :data:`HELD_OUT_PLAYS`).

    Parameters
    ----------
    out_dir : path
        Each run goes to ``out_dir/<run>/``.
    runs : sequence of "a", "b", "mid"
    steps : int, optional
        Override the number of steps (for a quick smoke run; the stored runs use the default).
    progress_factory : callable(run, total_steps) -> callable(step, loss), optional

    Returns
    -------
    dict run → manifest
    """
    from dataclasses import replace

    from ._corpora import shakespeare_split

    unknown = [r for r in runs if r not in TINY_TRAINING]
    if unknown:
        raise ValueError(f"runs must be among {sorted(TINY_TRAINING)}; got {unknown}")
    train, held = shakespeare_split()
    data, held_out = encode_bytes(train.values()), encode_bytes(held.values())
    out = {}
    for run in runs:
        cfg = TINY_TRAINING[run]
        if steps is not None:
            cfg = replace(cfg, steps=steps, checkpoints=tuple(s for s in cfg.checkpoints if s <= steps))
        progress = None if progress_factory is None else progress_factory(run, cfg.steps)
        out[run] = train_tiny(data, held_out, Path(out_dir) / run, cfg, progress=progress)
    return out
