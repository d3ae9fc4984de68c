"""Logit matrices cached on disk, one chunk of futures per file, so long runs resume where they stopped.

A matrix L_{M,k}(H, F) is computed in chunks of futures; each finished chunk is written atomically
(a uniquely named temporary file in the same folder, then ``os.replace``) under

    <cache_dir>/<key>/<start>-<end>.pt

where the key hashes the model's ``fingerprint()``, the histories, the futures and the kept columns.
An interrupted run leaves only whole chunks behind; the next run with the same inputs loads them
and computes the rest. Any change of model weights, data or columns changes the key.

Chunk format (version 2): a ``torch.save`` of a dict that says what the chunk claims to be::

    {"format": 2, "key": <matrix key>, "start": s, "end": e,
     "shape": [n, (e - s)·k], "dtype": "torch.float32", "sha256": <hex of the payload bytes>,
     "logits": (n, (e - s)·k) tensor}

Every chunk is verified on load against the key, range, expected shape, its own dtype and the
checksum of its payload. A chunk that fails (truncated, empty, unreadable, another matrix's, wrong
shape, altered bytes, an older format) is named in a :class:`CacheChunkWarning`, deleted and
recomputed: never used, never fatal. Two runs sharing one cache folder never collide: temporary
names are unique per writer, and the rename is atomic.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from logitrank._io import atomic_write_bytes, atomic_write_text
from logitrank._tokens import as_token_list
from logitrank.algorithms import logit_matrix

__all__ = ["CacheChunkWarning", "cached_logit_matrix", "matrix_key"]

_FORMAT = 2  # bump when the stored layout changes


class CacheChunkWarning(UserWarning):
    """A cached chunk did not verify (named in the message); it was deleted and recomputed."""



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


def _checksum(t: torch.Tensor) -> str:
    """sha256 of the tensor's raw bytes (any dtype, bfloat16 included)."""
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy()).hexdigest()  # hashes the buffer in place, no copy


def _save_chunk(path: Path, key: str, start: int, end: int, part: torch.Tensor) -> None:
    record = {"format": _FORMAT, "key": key, "start": start, "end": end, "shape": list(part.shape),
              "dtype": str(part.dtype), "sha256": _checksum(part), "logits": part}
    import io

    buf = io.BytesIO()
    torch.save(record, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_chunk(path: Path, key: str, start: int, end: int, shape: tuple[int, int]) -> torch.Tensor | None:
    """The chunk's tensor if every stored claim verifies; otherwise warn naming the file, delete it, None."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        problem = _verify(record, key, start, end, shape)
    except FileNotFoundError:  # another run replaced or removed it between listing and loading
        return None
    except Exception as err:  # noqa: BLE001  (truncated, empty or not a torch file)
        problem = f"unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    if problem is None:
        return record["logits"]
    try:
        path.unlink(missing_ok=True)
        done = "deleted"
    except OSError as err:
        done = f"could not delete it ({err.strerror})"
    warnings.warn(f"cache chunk {path} is bad: {problem}; {done}, recomputing it", CacheChunkWarning, stacklevel=3)
    return None


def _verify(record, key: str, start: int, end: int, shape: tuple[int, int]) -> str | None:
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        got = record.get("format") if isinstance(record, dict) else type(record).__name__
        return f"not a format-{_FORMAT} chunk (got {got!r})"
    if record.get("key") != key:
        return f"belongs to matrix {record.get('key')!r}, not {key!r}"
    if (record.get("start"), record.get("end")) != (start, end):
        return f"holds futures {record.get('start')}-{record.get('end')}, expected {start}-{end}"
    t = record.get("logits")
    if not isinstance(t, torch.Tensor):
        return "has no logits tensor"
    if tuple(t.shape) != tuple(shape) or list(record.get("shape", [])) != list(shape):
        return f"has shape {tuple(t.shape)} (recorded {record.get('shape')}), expected {tuple(shape)}"
    if str(t.dtype) != record.get("dtype") or not t.dtype.is_floating_point:
        return f"has dtype {t.dtype}, recorded {record.get('dtype')!r}"
    if _checksum(t) != record.get("sha256"):
        return "checksum mismatch (payload altered)"
    return None


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
        Where chunks live; None computes without caching. Bad chunks found there are reported with a
        :class:`CacheChunkWarning`, deleted and recomputed (module docstring).
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
    key = matrix_key(model, H, F, columns)
    folder = Path(cache_dir) / key
    k = V if columns is None else int(columns.shape[1])
    meta = folder / "meta.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not meta.exists():
            atomic_write_text(meta, json.dumps({"format": _FORMAT, "model": getattr(model, "name", type(model).__name__),
                                                "n": len(H), "m": len(F), "k": k}))
    except OSError as err:
        warnings.warn(f"cache folder {folder} is not usable ({err}); computing without the cache", CacheChunkWarning,
                      stacklevel=2)
        return logit_matrix(model, H, F, columns=columns, progress=progress)
    starts = list(range(0, len(F), chunk))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(starts), desc=desc, unit="chunk", leave=False)
    parts, hits = [], 0
    for s in starts:
        e = min(s + chunk, len(F))
        path = folder / f"{s:07d}-{e:07d}.pt"
        part = _load_chunk(path, key, s, e, (len(H), (e - s) * k)) if path.exists() else None
        if part is not None:
            hits += 1
        else:
            cols = None if columns is None else columns[s:e]
            part = logit_matrix(model, H, F[s:e], columns=cols, progress=progress).to("cpu")  # (n, c*k)
            try:
                _save_chunk(path, key, s, e, part)
            except OSError as err:  # a full or read-only disk costs the cache, never the result
                warnings.warn(f"cache chunk {path} could not be written ({err}); continuing without caching it",
                              CacheChunkWarning, stacklevel=2)
        parts.append(part)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{hits} cached")
    if bar is not None:
        bar.close()
    if not parts:
        return logit_matrix(model, H, F, columns=columns)
    return torch.cat(parts, dim=1)
