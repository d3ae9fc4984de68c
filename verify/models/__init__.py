"""Real language models for paper A's §3 experiments: a cached Hugging Face adapter, SmolLM2 offline,
and a tiny byte-level GPT trained on Shakespeare with checkpoints across training.

Every model here is a :class:`logitrank.synth.LanguageModel` and a :class:`CausalLM`: its ``logit_block``
method computes L_{M,k}(H, F) with each history's key/value cache reused across the futures, and
:func:`logitrank.algorithms.logit_matrix` dispatches to it. ``transformers`` is imported only when an HF model
is built, so ``import verify`` works without it.
"""

from ._causal import CausalLM
from ._corpora import (
    DOCSTRING_MODULES,
    HELD_OUT_PLAYS,
    CorpusUnavailable,
    python_docstrings,
    shakespeare_dir,
    shakespeare_split,
    shakespeare_texts,
)
from ._hf import SMOLLM2_GGUF, HFCausalLM, smollm2, smollm2_gguf
from ._named import TINY_DIR, TINY_RUNS, load_model, tiny_manifest, tiny_steps
from ._tiny import BOS_ID, BYTE_VOCAB, TinyConfig, TinyGPT, TinyLM, load_checkpoint
from ._train import DEFAULT_CHECKPOINTS, TrainConfig, encode_bytes, train_tiny

__all__ = [
    "BOS_ID",
    "BYTE_VOCAB",
    "DEFAULT_CHECKPOINTS",
    "DOCSTRING_MODULES",
    "HELD_OUT_PLAYS",
    "SMOLLM2_GGUF",
    "TINY_DIR",
    "TINY_RUNS",
    "CausalLM",
    "CorpusUnavailable",
    "HFCausalLM",
    "TinyConfig",
    "TinyGPT",
    "TinyLM",
    "TrainConfig",
    "encode_bytes",
    "load_checkpoint",
    "load_model",
    "python_docstrings",
    "shakespeare_dir",
    "shakespeare_split",
    "shakespeare_texts",
    "smollm2",
    "smollm2_gguf",
    "tiny_manifest",
    "tiny_steps",
    "train_tiny",
]
