"""Models: every source of a language model, behind one name table.

Real language models for paper A's §3 experiments (a cached Hugging Face adapter, SmolLM2 offline,
a tiny byte-level GPT trained on Shakespeare with checkpoints across training), random ISANs, and
served models (:class:`APIModel`, an OpenAI-compatible endpoint read back as a model; :func:`serve`
puts any model behind one). :func:`parse_model_name` / :func:`load_model` read every name the CLI,
sweeps and the Python API accept (table in :mod:`._names`). The corpora and their cutting into
histories and futures (paper A, Appendix A.1.1) live here too.

Room layering (``tests/test_import_graph.py``): models import only synth, algorithms and the shared
root modules of :mod:`logitrank.verify`.

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
from ._corpus_cut import CORPUS_NAMES, corpus_text, cut_histories_futures, token_sets, truncate_pairs
from ._hf import SMOLLM2_GGUF, HFCausalLM, smollm2, smollm2_gguf
from ._names import (
    KINDS,
    TINY_DIR,
    TINY_RUNS,
    ModelName,
    UnknownModelError,
    load_model,
    model_problem,
    parse_model_name,
    tiny_manifest,
    tiny_steps,
)
from ._tiny import BOS_ID, BYTE_VOCAB, TinyConfig, TinyGPT, TinyLM, load_checkpoint
from ._train import DEFAULT_CHECKPOINTS, TrainConfig, encode_bytes, train_tiny
from .served import (
    APICacheError,
    APICacheWarning,
    APIModel,
    APIModelError,
    APISettings,
    InconsistentServerError,
    QueryRecord,
    RecoveryError,
    RequestRefusedError,
    RestrictedAPIModel,
    ServerFaults,
    ServerUnreachableError,
    TokenMapError,
    running_server,
    serve,
    serve_app,
)

__all__ = [
    "BOS_ID",
    "BYTE_VOCAB",
    "CORPUS_NAMES",
    "DEFAULT_CHECKPOINTS",
    "DOCSTRING_MODULES",
    "HELD_OUT_PLAYS",
    "KINDS",
    "SMOLLM2_GGUF",
    "TINY_DIR",
    "TINY_RUNS",
    "APICacheError",
    "APICacheWarning",
    "APIModel",
    "APIModelError",
    "APISettings",
    "CausalLM",
    "CorpusUnavailable",
    "HFCausalLM",
    "InconsistentServerError",
    "ModelName",
    "QueryRecord",
    "RecoveryError",
    "RequestRefusedError",
    "RestrictedAPIModel",
    "ServerFaults",
    "ServerUnreachableError",
    "TinyConfig",
    "TinyGPT",
    "TinyLM",
    "TokenMapError",
    "TrainConfig",
    "UnknownModelError",
    "corpus_text",
    "cut_histories_futures",
    "encode_bytes",
    "load_checkpoint",
    "load_model",
    "model_problem",
    "parse_model_name",
    "python_docstrings",
    "running_server",
    "serve",
    "serve_app",
    "shakespeare_dir",
    "shakespeare_split",
    "shakespeare_texts",
    "smollm2",
    "smollm2_gguf",
    "tiny_manifest",
    "tiny_steps",
    "token_sets",
    "train_tiny",
    "truncate_pairs",
]
