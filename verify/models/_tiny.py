"""A tiny byte-level GPT, small enough to train on two CPU cores in minutes (issue 7).

The network follows nanoGPT (Karpathy, ``model.py``): token and position embeddings, pre-LayerNorm
blocks of causal self-attention and a GELU MLP, a final LayerNorm and a linear head. Tokens are the
256 byte values; id 256 is an input-only start token (the model never predicts it), so the empty
prefix has a next-byte distribution and the protocol's vocabulary is V = 256.

:class:`TinyLM` wraps the network as a :class:`logitrank.synth.LanguageModel` with the prefix-cached logit
matrix of :class:`logitrank.verify.models.CausalLM`. Checkpoints (``verify/data/tiny``, written by
:func:`logitrank.verify.models.train_tiny`) are loaded with :func:`load_checkpoint` or, by name,
:func:`logitrank.verify.models.load_model`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from logitrank._validation import check_int

from ._causal import CausalLM

__all__ = ["BOS_ID", "BYTE_VOCAB", "TinyConfig", "TinyGPT", "TinyLM"]

BYTE_VOCAB = 256  # output tokens: the byte values
BOS_ID = 256  # input-only start token


@dataclass(frozen=True)
class TinyConfig:
    """Shape of a :class:`TinyGPT`.

    Attributes
    ----------
    n_layer, n_head, n_embd : int
        Depth, attention heads, width (n_embd divisible by n_head).
    block_size : int
        Most positions per sequence, start token included.
    """

    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128

    def __post_init__(self):
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            check_int(name, getattr(self, name), minimum=1)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be divisible by n_head={self.n_head}; got n_embd={self.n_embd}")


class _Attention(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor, past, start: int, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 × (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, nh, start+T, hs)
            v = torch.cat([past[1], v], dim=2)
        if mask is None and start == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y), (k, v)


class _Block(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = _Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd))

    def forward(self, x, past, start, mask):
        a, present = self.attn(self.ln1(x), past, start, mask)
        x = x + a
        return x + self.mlp(self.ln2(x)), present


class TinyGPT(nn.Module):
    """nanoGPT-style decoder over 257 input ids (bytes + start) and 256 output bytes.

    ``forward(idx, past=None, start=0)`` maps (B, T) ids at positions start … start+T−1 to (B, T, 256)
    logits and the extended per-layer (keys, values) cache, each (B, n_head, start+T, head size).
    """

    def __init__(self, cfg: TinyConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(BYTE_VOCAB + 1, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, BYTE_VOCAB, bias=False)
        self._init(generator)

    @torch.no_grad()
    def _init(self, generator) -> None:
        """GPT-2 initialisation (normal 0.02; residual projections scaled by 1/√(2·n_layer)), seeded."""
        for name, p in self.named_parameters():
            if p.ndim == 1:  # LayerNorm gains 1, every bias 0
                p.fill_(1.0) if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")) else p.zero_()
                continue
            std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
            p.normal_(0.0, std, generator=generator)

    def forward(self, idx: torch.Tensor, past=None, start: int = 0, positions=None, key_mask=None):
        """(B, T) ids after ``start`` cached positions → (B, T, 256) logits and the extended cache.

        ``positions`` (B, T) overrides the position ids (default start … start+T−1); ``key_mask``
        (B, start+T) bool marks pad keys (False) that no query may attend to.
        """
        _B, T = idx.shape
        if positions is None:
            positions = torch.arange(start, start + T, device=idx.device)[None, :]  # (1, T)
        if T and int(positions.max()) >= self.cfg.block_size:
            raise ValueError(f"position ids reach {int(positions.max())}; block_size={self.cfg.block_size}")
        x = self.wte(idx) + self.wpe(positions)  # (B, T, C)
        mask = None
        if key_mask is not None or start > 0:
            slots = torch.arange(start + T, device=idx.device)  # key slots
            query = start + torch.arange(T, device=idx.device)  # query slots
            allowed = slots[None, :] <= query[:, None]  # (T, start+T) causal
            if key_mask is not None:
                # a left-pad query sees only pads; letting it see itself keeps its softmax finite
                allowed = (allowed[None] & key_mask[:, None, :]) | (slots[None, :] == query[:, None])[None]  # (B, T, S)
                allowed = allowed[:, None]  # (B, 1, T, S)
            mask = allowed
        presents = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, None if past is None else past[i], start, mask)
            presents.append(present)
        return self.head(self.ln_f(x)), presents  # (B, T, 256)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class TinyLM(CausalLM):
    """A :class:`TinyGPT` as a :class:`logitrank.synth.LanguageModel` over bytes (V = 256), start token 256.

    Parameters
    ----------
    net : TinyGPT
    name : str
        Identifier recorded in results and cache keys (e.g. ``"tiny@step3000"``).
    dtype : torch.dtype
        Dtype the network runs in and logits are returned in (float32 default).
    device : str or torch.device

    Examples
    --------
    >>> lm = TinyLM.untrained(TinyConfig(n_layer=1, n_embd=16, n_head=2, block_size=8), seed=0)
    >>> lm.vocab_size, lm.logits([[104, 105]]).shape
    (256, torch.Size([1, 256]))
    >>> lm.decode(lm.encode("hi"))
    'hi'
    """

    def __init__(self, net: TinyGPT, *, name: str = "tiny", dtype: torch.dtype = torch.float32, device="cpu"):
        self.device = torch.device(device)
        self.dtype = dtype
        self.net = net.to(device=self.device, dtype=dtype).eval()
        self.vocab_size = BYTE_VOCAB
        self.bos_token_id = BOS_ID
        self.max_length = net.cfg.block_size
        self.width = net.cfg.n_embd
        self.name = name

    @classmethod
    def untrained(cls, cfg: TinyConfig = TinyConfig(), *, seed: int, **kwargs) -> TinyLM:
        """A freshly initialised network (step 0), drawn from ``seed``."""
        return cls(TinyGPT(cfg, generator=torch.Generator().manual_seed(seed)), name=f"tiny-init{seed}", **kwargs)

    def _run(self, ids, past, start, positions=None, key_mask=None):
        return self.net(ids, past, start, positions, key_mask)

    def _hidden(self, ids, positions, mask, past=None):  # the packed path of CausalLM.logit_block (_packed.py)
        net = self.net
        x = net.wte(ids) + net.wpe(positions)  # (B, L, C)
        start = 0 if past is None else past[0][0].shape[2]
        presents = []
        for i, block in enumerate(net.blocks):
            x, present = block(x, None if past is None else past[i], start, mask)
            presents.append(present)
        return net.ln_f(x), presents  # (B, L, C)

    def _head(self):
        return self.net.head.weight, None

    @staticmethod
    def encode(text: str) -> list[int]:
        """UTF-8 bytes of ``text`` as token ids."""
        return list(text.encode("utf-8"))

    @staticmethod
    def decode(ids) -> str:
        """Token ids (bytes) back to text; invalid UTF-8 is replaced."""
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def fingerprint(self) -> str:
        """SHA-256 of the configuration and weights (cache keys)."""
        h = hashlib.sha256(repr(asdict(self.net.cfg)).encode())
        for k, v in sorted(self.net.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def load_checkpoint(path, *, device="cpu", dtype=torch.float32, name: str | None = None) -> TinyLM:
    """A :class:`TinyLM` from a checkpoint file written by :func:`logitrank.verify.models.train_tiny`."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    cfg = TinyConfig(**state["config"])
    net = TinyGPT(cfg)
    net.load_state_dict({k: v.to(torch.float32) for k, v in state["weights"].items()})
    return TinyLM(net, name=name or f"tiny@step{state['step']}", dtype=dtype, device=device)
