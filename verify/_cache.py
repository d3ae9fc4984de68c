"""Logit matrices cached on disk, one chunk of futures per file, so long runs resume where they stopped.

A matrix L_{M,k}(H, F) is computed in chunks of futures; each finished chunk is written atomically
(temporary file, then rename) under

    <cache_dir>/<key>/<start>-<end>.pt

where the key hashes the model's ``fingerprint()``, the histories, the futures and the kept columns.
An interrupted run leaves only whole chunks behind; the next run with the same inputs loads them
and computes the rest. Any change of model weights, data or columns changes the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from logitrank._tokens import as_token_list
from logitrank.algorithms import logit_matrix

__all__ = ["cached_logit_matrix", "matrix_key"]

_FORMAT = 1  # bump when the stored layout changes


def matrix_key(model, histories, futures, columns: torch.Tensor | None) -> str:
    """Hex key of (model fingerprint, H, F, columns); raises TypeError for a model without ``fingerprint``."""
    fp = getattr(model, "fingerprint", None)
    if not callable(fp):
        raise TypeError(
            f"model {type(model).__name__} has no fingerprint() method, so its logit matrices cannot be "
            "cached on disk safely; pass cache_dir=None"
        )
    h = hashlib.sha256(f"v{_FORMAT}|{fp()}|V={model.vocab_size}".encode())
    h.update(json.dumps([list(x) for x in histories]).encode())
    h.update(b"|")
    h.update(json.dumps([list(x) for x in futures]).encode())
    if columns is not None:
        h.update(columns.to("cpu", torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def cached_logit_matrix(model, histories, futures, *, columns: torch.Tensor | None = None, cache_dir=None,
                        chunk: int | None = None, progress: bool = False, desc: str = "logit matrix") -> torch.Tensor:
    """:func:`logitrank.algorithms.logit_matrix` with finished chunks of futures stored under ``cache_dir``.

    Parameters
    ----------
    model : LanguageModel with a ``fingerprint()`` method (when ``cache_dir`` is set)
    histories : (n,) token sequences
    futures : (m,) token sequences
    columns : (m, k) LongTensor, optional
        Tokens kept per future (e.g. :func:`logitrank.algorithms.top_k_columns`); all V when None.
    cache_dir : path or None
        Where chunks live; None computes without caching.
    chunk : int, optional
        Futures per stored chunk; default about 16384 cells per chunk (16384 // n futures, 1 … 256).
    progress : bool
        tqdm bars on stderr: one over chunks (showing how many came from the cache), one over the
        cells of the chunk being computed.
    desc : str
        Label of the bar.

    Returns
    -------
    (n, m·k) tensor, future-major like :func:`logitrank.algorithms.logit_matrix`.
    """
    V = model.vocab_size
    H = as_token_list("histories", histories, V)
    F = as_token_list("futures", futures, V)
    if chunk is None:
        chunk = max(1, min(256, 16384 // max(1, len(H))))
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int; got {chunk!r}")
    if cache_dir is None:
        return logit_matrix(model, H, F, columns=columns, progress=progress)
    folder = Path(cache_dir) / matrix_key(model, H, F, columns)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "meta.json"
    if not meta.exists():
        meta.write_text(json.dumps({"model": getattr(model, "name", type(model).__name__), "n": len(H), "m": len(F),
                                    "k": V if columns is None else int(columns.shape[1])}))
    starts = list(range(0, len(F), chunk))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(starts), desc=desc, unit="chunk", leave=False)
    parts, hits = [], 0
    for s in starts:
        e = min(s + chunk, len(F))
        path = folder / f"{s:07d}-{e:07d}.pt"
        if path.exists():
            part = torch.load(path, map_location="cpu", weights_only=True)
            hits += 1
        else:
            cols = None if columns is None else columns[s:e]
            part = logit_matrix(model, H, F[s:e], columns=cols, progress=progress).to("cpu")  # (n, c*k)
            tmp = path.with_suffix(".tmp")
            torch.save(part, tmp)
            os.replace(tmp, path)
        parts.append(part)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{hits} cached")
    if bar is not None:
        bar.close()
    if not parts:
        return logit_matrix(model, H, F, columns=columns)
    return torch.cat(parts, dim=1)
