"""Shared set-up of the real-model experiments (paper A, §3 and Appendix A): data, sizes, matrices.

The sizes are one table of presets, :data:`REAL_SIZES`, shared by E1–E11 and X5 (E8 adds its rank
r): "quick" and "full" for the tiny byte-level models, "quick-hf" and "full-hf" for every other
model (subword tokenizers), and "paper" for paper A's own sizes. A check reads them with
:func:`sizes_for` (the preset :func:`real_preset` names, with ``config.overrides`` applied).

Histories and futures are cut from text as in Appendix A.1.1, with lengths in *characters* and cuts
rounded to a word boundary, so the same strings serve models with different tokenizers (the rows
of two models' matrices are then the same histories, as Fig 11 needs). Each model tokenizes them
with its own ``encode``. LinGen (§3.3, Appendix A.3) measures lengths in tokens of one model.

Matrices are memoised for the life of the process (several checks share one) and stored on disk
under ``<out_dir>/cache`` (:func:`logitrank.verify.experiments._matrix_cache.cached_logit_matrix`), so an interrupted run resumes.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from logitrank.algorithms import random_k_columns, top_k_columns

from ..._presets import Presets
from ...experiments._matrix_cache import cached_logit_matrix
from ...models import CorpusUnavailable
from ...models._corpus_cut import corpus_text as _corpus_text
from ...models._corpus_cut import cut_histories_futures, token_sets, truncate_pairs
from .._check_api import CheckConfig, ClaimResult

__all__ = [
    "OPTIONAL_ERRORS",
    "REAL_SIZES",
    "Sizes",
    "cache_dir",
    "corpus_sets",
    "corpus_text",
    "figure_dir",
    "get_model",
    "is_tiny",
    "matrix",
    "matrix_stats",
    "not_run",
    "prefetch",
    "real_preset",
    "setting_of",
    "sizes_for",
    "spectrum",
    "text_sets",
    "token_sets",
    "truncate_pairs",
    "untrained_twin",
]


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of the real-model experiments: one resolved preset of :data:`REAL_SIZES`.

    Attributes
    ----------
    n : int
        Histories (and futures) of the spectral experiments.
    n_checkpoint : int
        Histories and futures per checkpoint in E4 / X5.
    min_chars, max_chars : int
        ℓ_min, ℓ_max of Appendix A.1.1 in characters.
    k : int
        Top-k tokens per future (paper: 50).
    lingen_histories, lingen_futures : int
        |H| and |F| of the LinGen regression (Appendix A.3).
    lingen_min, lingen_max : int
        Token lengths of LinGen's histories and targets (paper: 8 and 30).
    targets, samples, new_tokens : int
        LinGen targets, generations per target, tokens per generation (paper: 50, 5, 15).
    """

    n: int
    n_checkpoint: int
    min_chars: int
    max_chars: int
    k: int
    lingen_histories: int
    lingen_futures: int
    lingen_min: int
    lingen_max: int
    targets: int
    samples: int
    new_tokens: int

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"setting {f.name} must be an int >= 1; got {value!r}")
        for low, high in (("min_chars", "max_chars"), ("lingen_min", "lingen_max")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"setting {low} must be <= {high}={getattr(self, high)}; got {getattr(self, low)}")

    @classmethod
    def of(cls, settings: Mapping) -> Sizes:
        """The sizes among ``settings`` (a resolved preset of :data:`REAL_SIZES`, or of a table extending it)."""
        return cls(**{f.name: settings[f.name] for f in fields(cls)})


#: The real-model sizes (attributes of :class:`Sizes`) per preset: "quick"/"full" for the tiny
#: byte-level models, "quick-hf"/"full-hf" for any other model, "paper" for paper A's sizes
#: (|H| = |F| ≈ 10^4 with ℓ = 50–200 characters and k = 50, App. A.1.2; about 4000 per checkpoint, §3.1
#: Fig 3; LinGen: 40000 histories, 10000 futures, 8–30 tokens, 50 targets × 5 generations of 15
#: tokens, §3.3 and App. A.3). :func:`real_preset` picks the preset of a run.
REAL_SIZES = Presets({
    "quick": {"n": 150, "n_checkpoint": 100, "min_chars": 16, "max_chars": 38, "k": 50, "lingen_histories": 300,
              "lingen_futures": 150, "lingen_min": 12, "lingen_max": 36, "targets": 6, "samples": 5, "new_tokens": 15},
    "full": {"n": 1000, "n_checkpoint": 400, "min_chars": 16, "max_chars": 38, "k": 50, "lingen_histories": 2000,
             "lingen_futures": 500, "lingen_min": 12, "lingen_max": 36, "targets": 50, "samples": 5, "new_tokens": 15},
    "quick-hf": {"n": 40, "n_checkpoint": 40, "min_chars": 40, "max_chars": 120, "k": 50, "lingen_histories": 80,
                 "lingen_futures": 30, "lingen_min": 8, "lingen_max": 30, "targets": 3, "samples": 2, "new_tokens": 10},
    "full-hf": {"n": 1000, "n_checkpoint": 300, "min_chars": 50, "max_chars": 200, "k": 50, "lingen_histories": 4000,
                "lingen_futures": 1000, "lingen_min": 8, "lingen_max": 30, "targets": 50, "samples": 5, "new_tokens": 15},
    "paper": {"n": 10000, "n_checkpoint": 4000, "min_chars": 50, "max_chars": 200, "k": 50, "lingen_histories": 40000,
              "lingen_futures": 10000, "lingen_min": 8, "lingen_max": 30, "targets": 50, "samples": 5, "new_tokens": 15},
}, pick=lambda config: real_preset(config),
   minimums=dict.fromkeys(("n", "n_checkpoint", "min_chars", "max_chars", "k", "lingen_histories", "lingen_futures",
                           "lingen_min", "lingen_max", "targets", "samples", "new_tokens"), 1))


def is_tiny(name: str) -> bool:
    return name == "tiny" or name.startswith(("tiny@", "tiny-b"))


def real_preset(config: CheckConfig) -> str:
    """The preset of :data:`REAL_SIZES` for this run: ``config.scale`` for the tiny models, else
    ``"<scale>-hf"`` (the "paper" preset is never picked by a scale; pass its name explicitly)."""
    return config.scale if is_tiny(_model_name(config)) else f"{config.scale}-hf"


def sizes_for(config: CheckConfig, table: Presets | None = None) -> Sizes:
    """This run's real-model sizes: the preset ``table`` picks (default :data:`REAL_SIZES`, which picks by :func:`real_preset`)
    with ``config.overrides`` applied, via ``config.preset`` (so they are recorded with the result)."""
    return Sizes.of(config.preset(REAL_SIZES if table is None else table))


def _model_name(config: CheckConfig) -> str:
    return getattr(config, "model", "tiny")


def cache_dir(config: CheckConfig) -> Path:
    return Path(config.out_dir) / "cache"


def not_run(claim: str, err: Exception, config: CheckConfig) -> ClaimResult:
    """A not-run result for a missing optional piece (corpus, model, checkpoint)."""
    return ClaimResult(claim, "not-run", setting={"model": _model_name(config)},
                       reason=f"{type(err).__name__}: {err}")


def get_model(name: str, dtype: str = "float32"):
    """The named model (see :func:`logitrank.verify.models.load_model`) with weights in ``dtype``
    ("float32" or "bfloat16", :attr:`CheckConfig.dtype`)."""
    from ...models import load_model

    return load_model(name, dtype=None if dtype == "float32" else getattr(torch, dtype))


# -- text (the Appendix A.1.1 cutter is public: logitrank.verify.models._corpus_cut) ----------------------------
corpus_text = _corpus_text


@functools.lru_cache(maxsize=32)
def text_sets(corpus: str, n_histories: int, n_futures: int, min_chars: int, max_chars: int, seed: int):
    """(histories, futures) as tuples of strings: :func:`logitrank.verify.models._corpus_cut.cut_histories_futures`."""
    return cut_histories_futures(corpus, n_histories, n_futures, min_chars=min_chars, max_chars=max_chars, seed=seed)


# -- matrices ------------------------------------------------------------------------------------------
_MEMO: dict = {}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj).encode()).hexdigest()[:16]


#: Largest full-vocabulary matrix (n·m·V float32 entries × 4 bytes) kept in memory; below it all
#: column selections of one (model, H, F) are gathered from a single evaluation.
FULL_MATRIX_BYTES = 2**28


def _chunk(n: int, m: int) -> int:
    """Futures per cached chunk: >= 64 so the packed path of CausalLM.logit_block gets whole packs."""
    return max(1, min(m, max(64, min(256, 16384 // max(1, n)))))


#: forwards of the model that produced a logit matrix in this process (memoised reuse not counted):
#: "matrices" and "cells" (histories × futures); :func:`matrix_stats` reads it
_STATS = {"matrices": 0, "cells": 0}


def matrix_stats() -> dict:
    """How many logit matrices this process computed (or read from the disk cache), and their cells (n·m)."""
    return dict(_STATS)


def _columns(model, F, select: str, k: int) -> torch.Tensor:
    """(m, k) columns of ``select``: "top" (§3.1, decreasing, ties to the smaller id) or "random:<seed>"."""
    if select == "top":
        return top_k_columns(model, F, k)
    if select.startswith("random:"):
        return random_k_columns(model.vocab_size, len(F), k, generator=int(select.split(":")[1]))
    raise ValueError(f"select must be 'top' or 'random:<seed>'; got {select!r}")


def _base(model, H, F) -> tuple:
    return (model.name, _digest([list(h) for h in H]), _digest([list(f) for f in F]))


def _compute(model, H, F, config: CheckConfig, desc: str, columns=None) -> torch.Tensor:
    _STATS["matrices"] += 1
    _STATS["cells"] += len(H) * len(F)
    return cached_logit_matrix(model, H, F, columns=columns, cache_dir=cache_dir(config), progress=True,
                               chunk=_chunk(len(H), len(F)), desc=desc or f"L({model.name})")


def prefetch(model, H, F, selections, *, config: CheckConfig, desc: str = "") -> None:
    """Compute the matrices of several column ``selections`` [(select, k), …] of one (H, F) in ONE forward:
    the union of their columns, split into each selection's memo entry (issue 32: claims that read the
    same L(H, F) share its forward). A no-op where the full-vocabulary matrix is used anyway."""
    V, n, m = model.vocab_size, len(H), len(F)
    base = _base(model, H, F)
    wanted = [(sel, k) for sel, k in selections if base + (sel, k) not in _MEMO]
    if n * m * V * 4 <= FULL_MATRIX_BYTES or len(wanted) < 2:
        return
    cols = [_columns(model, F, sel, k) for sel, k in wanted]
    union, where = _union_columns(cols, V)
    L = _compute(model, H, F, config, desc, columns=union).to(torch.float64).reshape(n, m, -1)  # (n, m, u)
    for (sel, k), pos in zip(wanted, where):
        _MEMO[base + (sel, k)] = L.gather(2, pos[None].expand(n, -1, -1)).reshape(n, m * k).contiguous()


def _union_columns(cols: list[torch.Tensor], V: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per future, the distinct tokens of every selection (selections overlap: a random-k column may be a
    top one), padded to one width u with tokens not yet in the row: ((m, u) union, [(m, k_i) positions of
    each selection's tokens in it])."""
    rows = [list(dict.fromkeys(torch.cat([c[j] for c in cols]).tolist())) for j in range(cols[0].shape[0])]
    width = max(len(r) for r in rows)
    for r in rows:
        have = set(r)
        r.extend(itertools.islice((t for t in range(V) if t not in have), width - len(r)))  # the few fillers
    index = [{t: i for i, t in enumerate(r)} for r in rows]
    where = [torch.tensor([[index[j][t] for t in c[j].tolist()] for j in range(len(rows))], dtype=torch.long)
             for c in cols]
    return torch.tensor(rows, dtype=torch.long), where


def _from_wider_top(base, k: int, n: int, m: int):
    """The top-k matrix sliced from a memoised top-k' one with k' > k (top columns are a decreasing prefix)."""
    wider = [key for key in _MEMO if len(key) == 5 and key[:3] == base and key[3] == "top" and key[4] > k]
    if not wider:
        return None
    key = min(wider, key=lambda key: key[4])
    return _MEMO[key].reshape(n, m, key[4])[:, :, :k].reshape(n, m * k).contiguous()


def matrix(model, H, F, *, select: str, config: CheckConfig, k: int, desc: str = ""):
    """(L, columns) for L_{M,k}(H, F) with ``select`` = "top" (§3.1) or "random:<seed>" (App. A.1.5).

    When the full-vocabulary matrix is small (n·m·V·4 bytes <= ``FULL_MATRIX_BYTES``) it is computed
    once and every selection is gathered from it; otherwise the selected columns are computed
    directly (a top-k matrix is sliced from a wider top-k' one already computed, and :func:`prefetch`
    computes several selections in one forward). Results are memoised per process and cached on disk
    under ``<out_dir>/cache``.
    """
    V = model.vocab_size
    cols = _columns(model, F, select, k)
    base = _base(model, H, F)
    if len(H) * len(F) * V * 4 <= FULL_MATRIX_BYTES:
        if base not in _MEMO:
            _MEMO[base] = _compute(model, H, F, config, desc).reshape(len(H), len(F), V)  # (n, m, V)
        full = _MEMO[base]
        L = full.gather(2, cols.to(full.device)[None].expand(len(H), -1, -1)).reshape(len(H), -1)  # (n, m*k)
        return L.to(torch.float64), cols
    key = base + (select, k)
    if key not in _MEMO:
        sliced = _from_wider_top(base, k, len(H), len(F)) if select == "top" else None
        _MEMO[key] = sliced if sliced is not None else _compute(model, H, F, config, desc, columns=cols).to(torch.float64)
    return _MEMO[key], cols


def spectrum(L: torch.Tensor, n_rows: int, n_futures: int, k: int) -> torch.Tensor:
    """Singular values of the leading (n_rows, n_futures·k) block, divided by √(entries) (App. A.1.2)."""
    block = L[:n_rows, : n_futures * k]
    return torch.linalg.svdvals(block) / (block.numel() ** 0.5)


OPTIONAL_ERRORS = (FileNotFoundError, ImportError, CorpusUnavailable)


def figure_dir(config: CheckConfig) -> Path:
    return config.figure_dir


def corpus_sets(model, config: CheckConfig, corpus: str = "shakespeare", n: int | None = None):
    S = sizes_for(config)
    n = n or S.n
    Ht, Ft = text_sets(corpus, n, n, S.min_chars, S.max_chars, config.seed)
    H, F = token_sets(model, Ht, Ft)
    return Ht, Ft, H, F


def setting_of(model, config, H, F, k, corpus: str = "held-out Shakespeare plays", **extra) -> dict:
    S = sizes_for(config)
    dtype = getattr(config, "dtype", "float32")
    named = {} if dtype == "float32" else {"dtype": dtype}  # float32 settings read as they always did
    return {"model": model.name, **named, "corpus": corpus, "|H|": len(H), "|F|": len(F), "k": k,
            "ℓ_min, ℓ_max (chars)": [S.min_chars, S.max_chars], "columns": "top-k after the future alone (§3.1)",
            **extra}


def untrained_twin(model, config: CheckConfig):
    """The untrained counterpart: checkpoint 0 of the tiny run, or a random re-initialisation."""
    if is_tiny(model.name):
        return get_model("tiny@step0")
    from transformers import AutoModelForCausalLM

    from ...models import HFCausalLM

    with torch.random.fork_rng(devices=[]):  # from_config draws from the global generator: leave it as it was
        torch.manual_seed(config.seed)
        net = AutoModelForCausalLM.from_config(model.net.config)
    net = net.to(dtype=next(model.net.parameters()).dtype)  # the trained model's dtype (CheckConfig.dtype)
    return HFCausalLM(net, tokenizer=model.tokenizer, bos_token_id=model.bos_token_id, name=f"{model.name}-init{config.seed}")
