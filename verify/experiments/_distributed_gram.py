"""The logit-matrix Gram sum on a Dask cluster, resumable after a killed driver or a lost worker (issue 26).

G = L(H, F) L(H, F)ᵀ is a sum over slices of the futures (Fact C.20), so the futures are cut into
slices, each Dask task computes its slice's partial Gram with the library's own accumulator
(:class:`logitrank.algorithms.GramAccumulator`, the packed/cached path of the model included), and
the driver adds the partial sums into one running sum as they arrive. After each addition the
running sum is checkpointed (float64 data + a JSON record of the finished slices and the sum's
sha256, written atomically, data before record), so:

* a killed driver restarts from the record and submits only the unfinished slices;
* a lost worker's slices are recomputed by Dask (``retries``), never double-counted: a slice is
  added once, when its result arrives, and recorded in the same checkpoint write;
* a checkpoint that does not verify is refused with :class:`CheckpointError`, never used: the record
  carries a sha256 of its whole content (``record_sha256``: the finished slices, the data file's name
  and checksum, the setting's key), so an edited ``done`` list, a truncated record or a flipped byte
  of the data all fail; the data file must be a plain ``gram-N.npy`` name inside the folder (a record
  naming a path elsewhere is refused before anything is read), and only such files of the folder are
  ever deleted;
* with ``keyed=True`` each setting checkpoints into its own subfolder (named by the setting's
  digest), so runs of other sizes into one folder each resume their own.

Workers load a named model once each (:func:`logitrank.verify.models.load_model`) and keep it;
a model object (e.g. a synthetic ISAN) is shipped to the cluster once with ``client.scatter``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from logitrank.algorithms import GramAccumulator

__all__ = ["CheckpointError", "DistributedGram", "distributed_gram"]

_WORKER_MODELS: dict = {}  # on each worker: model name → loaded model (one load per worker process)
#: the only data files a checkpoint record may name (plain names inside its folder)
_DATA_NAME = re.compile(r"gram-[0-9]+\.npy", re.ASCII)
#: the fields of a checkpoint record covered by its ``record_sha256``
_RECORD_FIELDS = ("key", "data", "sha256", "inv", "columns", "done")


class CheckpointError(ValueError):
    """A Dask Gram checkpoint that cannot be used (another setting's, edited, truncated or damaged); the
    message is one line naming the file and the way out."""


def _worker_model(model, device: str | None, dtype: str | None = None):
    if not isinstance(model, str):
        return model
    key = (model, device, dtype)
    if key not in _WORKER_MODELS:
        from ..models import load_model

        kwargs = {} if device is None else {"device": device}
        if dtype is not None:
            kwargs["dtype"] = getattr(torch, dtype)
        _WORKER_MODELS[key] = load_model(model, **kwargs)
    return _WORKER_MODELS[key]


def _slice_gram(model, device, dtype, histories, futures, columns, settings: dict) -> dict:
    """One task: the partial Gram of one slice of the futures → {"G": (n, n) float64 array, "inv", "columns"}."""
    torch.set_num_threads(int(settings.get("threads", 1)))
    m = _worker_model(model, device, dtype)
    acc = GramAccumulator(m, histories, memory_budget=settings["memory_budget"], batch_size=settings["batch_size"])
    cols = None if columns is None else torch.as_tensor(np.asarray(columns), dtype=torch.long)
    acc.add(futures, columns=cols)
    state = acc.state()
    return {"G": state["G"].cpu().numpy(), "inv": state["inv"], "columns": state["columns"]}


@dataclass(frozen=True)
class DistributedGram:
    """The result of :func:`distributed_gram`.

    Attributes
    ----------
    accumulator : GramAccumulator
        The full sum (read ``.gram`` or ``.spectrum()``).
    slices : int
        Slices of the futures in all.
    computed : list of int
        Slices computed in this call (the others came from the checkpoint).
    """

    accumulator: GramAccumulator
    slices: int
    computed: list


def _key(model, histories, futures, columns, slices: int, dtype) -> str:
    """A digest of the setting: model name (or type), the weights' dtype, H, F, the columns and the slicing.

    The dtype is that of the model the driver holds (a float32 sum must never resume from bfloat16
    slices); the device is not in it, so slices from CPU and GPU workers may meet (rounding apart)."""
    h = hashlib.sha256()
    h.update((model if isinstance(model, str) else type(model).__name__).encode())
    h.update(f"|dtype={dtype}|".encode())
    h.update(json.dumps([list(map(int, x)) for x in histories]).encode())
    h.update(json.dumps([list(map(int, x)) for x in futures]).encode())
    h.update(b"none" if columns is None else np.ascontiguousarray(np.asarray(columns, dtype=np.int64)).tobytes())
    h.update(str(slices).encode())
    return h.hexdigest()


def _sha(G: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(G).tobytes()).hexdigest()


def _record_digest(meta: dict) -> str:
    body = {name: meta.get(name) for name in _RECORD_FIELDS}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _read_record(checkpoint: Path, record: Path) -> dict:
    """The record's fields, verified against its own checksum; CheckpointError otherwise."""
    try:
        meta = json.loads(record.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint record {record} is not readable JSON ({type(err).__name__}); delete the "
                              f"folder {checkpoint} to start over") from None
    if not isinstance(meta, dict) or meta.get("record_sha256") != _record_digest(meta):
        raise CheckpointError(f"checkpoint record {record} does not verify (its content does not match its "
                              f"record_sha256: edited, truncated or written by an older version); delete the folder "
                              f"{checkpoint} to start over")
    return meta


def _load(checkpoint: Path, key: str, n: int, slices: int):
    """(G, inv, columns, done) from a verified checkpoint, or None when there is none."""
    record = checkpoint / "record.json"
    if not record.exists():
        return None
    meta = _read_record(checkpoint, record)
    if meta["key"] != key:
        raise CheckpointError(f"checkpoint {checkpoint} belongs to another setting (model, histories, futures, columns, "
                              "weights' dtype or slices differ); use another folder or delete it")
    if not isinstance(meta["data"], str) or not _DATA_NAME.fullmatch(meta["data"]):
        raise CheckpointError(f"checkpoint record {record} names the data file {meta['data']!r}, which is not a "
                              f"gram-N.npy file of {checkpoint}; delete the folder {checkpoint} to start over")
    done = meta["done"]
    if (not isinstance(done, list) or not all(isinstance(p, int) and 0 <= p < slices for p in done)
            or len(set(done)) != len(done)):
        raise CheckpointError(f"checkpoint record {record} lists finished slices {str(done)[:80]} that are not distinct "
                              f"slices of 0 … {slices - 1}; delete the folder {checkpoint} to start over")
    data = checkpoint / meta["data"]
    try:
        G = np.load(data, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint data {data} is not readable ({type(err).__name__}); delete the folder "
                              f"{checkpoint} to start over") from None
    if G.shape != (n, n) or _sha(G) != meta["sha256"]:
        raise CheckpointError(f"checkpoint data {data} does not verify (shape or sha256 differ from {record}); "
                              f"delete the folder {checkpoint} to start over")
    return G, meta["inv"], int(meta["columns"]), list(done)


def _save(checkpoint: Path, key: str, acc: GramAccumulator, done: list) -> None:
    """Data first (a new file name each time), then the record that names it, each atomically; the data
    file the old record named is deleted only when it is a gram-N.npy file of this folder."""
    state = acc.state()
    G = state["G"].cpu().numpy()
    name = f"gram-{len(done)}.npy"
    tmp = checkpoint / (name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, G, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, checkpoint / name)
    record = {"key": key, "data": name, "sha256": _sha(G), "inv": state["inv"], "columns": state["columns"],
              "done": sorted(done)}
    record["record_sha256"] = _record_digest(record)
    tmp = checkpoint / "record.json.tmp"
    tmp.write_text(json.dumps(record))
    old = None
    if (checkpoint / "record.json").exists():
        try:
            old = json.loads((checkpoint / "record.json").read_text()).get("data")
        except (ValueError, AttributeError, UnicodeDecodeError):
            old = None
    os.replace(tmp, checkpoint / "record.json")
    if isinstance(old, str) and _DATA_NAME.fullmatch(old) and old != name:
        (checkpoint / old).unlink(missing_ok=True)


def _resume(checkpoint, key: str, acc: GramAccumulator, local, H: list, *, slices: int, keyed: bool, **sizes) -> tuple:
    """(checkpoint folder or None, running sum, finished slices) from ``checkpoint``'s record, else ``acc`` and none
    (the folder is made when missing; with ``keyed`` the setting's own subfolder); ``sizes`` are the
    accumulator's ``memory_budget`` and ``batch_size``."""
    if checkpoint is None:
        return None, acc, []
    path = Path(checkpoint) / key[:16] if keyed else Path(checkpoint)
    path.mkdir(parents=True, exist_ok=True)
    found = _load(path, key, len(H), slices)
    if found is None:
        return path, acc, []
    G, inv, cols_done, done = found
    acc = GramAccumulator.from_state(local, H, {"G": torch.from_numpy(G), "inv": inv, "columns": cols_done,
                                                "slices": len(done)}, **sizes)
    return path, acc, done


def _submit(client, model, H: list, F: list, columns, *, device, dtype, bounds: list, todo: list, key: str,
            settings: dict, retries: int) -> dict:
    """Ship ``model`` (an object, once) and submit one task per slice of ``todo`` → {Dask future: slice}."""
    # a fresh key per call (hash=False): a scatter of the same model by an earlier call may be released meanwhile
    shipped = client.scatter(model, broadcast=True, hash=False) if not isinstance(model, str) else model
    tasks = {}
    for p in todo:
        a, b = bounds[p], bounds[p + 1]
        fut = client.submit(_slice_gram, shipped, device, dtype, H, F[a:b], None if columns is None else columns[a:b],
                            settings, retries=retries, pure=False, key=f"gram-slice-{key[:12]}-{p}")
        tasks[fut] = p
    return tasks


def distributed_gram(
    model,
    histories: Sequence,
    futures: Sequence,
    *,
    client,
    columns=None,
    slices: int = 16,
    checkpoint=None,
    device: str | None = None,
    dtype: str | None = None,
    memory_budget: int = 2**28,
    batch_size: int = 4096,
    threads: int = 1,
    retries: int = 3,
    max_slices: int | None = None,
    on_slice: Callable[[int, int], None] | None = None,
    keyed: bool = False,
) -> DistributedGram:
    """G = L(H, F) L(H, F)ᵀ summed over ``slices`` slices of the futures on a Dask ``client``.

    Parameters
    ----------
    model : LanguageModel or str
        A model object (shipped once to the cluster) or a name for
        :func:`logitrank.verify.models.load_model` (loaded once per worker, on ``device``, with weights
        of ``dtype``, a torch dtype name such as "float32").
    histories, futures : sequences of token sequences
        H (n of them) and F.
    client : distributed.Client
    columns : (|F|, k) integer array, optional
        The k token columns of each future (default every token).
    slices : int >= 1
        How many tasks the futures are cut into.
    checkpoint : folder, optional
        The running sum is saved there after every slice; a later call with the same setting resumes.
        A checkpoint that does not verify raises :class:`CheckpointError` (module docstring).
    keyed : bool
        Checkpoint into the subfolder of ``checkpoint`` named by the setting's digest, so settings
        that share one folder each keep (and resume) their own.
    max_slices : int, optional
        Stop after this many new slices (the sum so far is in the checkpoint).
    on_slice : callable(done, total), optional
        Called after each slice is added (progress).

    Returns
    -------
    DistributedGram
    """
    from distributed import as_completed

    if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
        raise ValueError(f"slices must be an int >= 1; got {slices!r}")
    H = [tuple(int(t) for t in h) for h in histories]
    F = [tuple(int(t) for t in f) for f in futures]
    if columns is not None:
        columns = np.asarray(columns, dtype=np.int64)
        if columns.ndim != 2 or columns.shape[0] != len(F):
            raise ValueError(f"columns must be a (|F|, k) = ({len(F)}, k) integer array; got shape {columns.shape}")
    slices = min(slices, max(1, len(F)))
    bounds = [round(i * len(F) / slices) for i in range(slices + 1)]
    local = model if not isinstance(model, str) else _worker_model(model, device, dtype)
    acc = GramAccumulator(local, H, memory_budget=memory_budget, batch_size=batch_size)
    key = _key(model, H, F, columns, slices, getattr(local, "dtype", None))
    path, acc, done = _resume(checkpoint, key, acc, local, H, slices=slices, keyed=keyed, memory_budget=memory_budget,
                              batch_size=batch_size)
    todo = [p for p in range(slices) if p not in set(done)]
    if max_slices is not None:
        todo = todo[:max_slices]
    settings = {"memory_budget": memory_budget, "batch_size": batch_size, "threads": threads}
    tasks = _submit(client, model, H, F, columns, device=device, dtype=dtype, bounds=bounds, todo=todo, key=key,
                    settings=settings, retries=retries)
    computed = []
    for fut in as_completed(list(tasks)):
        p = tasks[fut]
        part = fut.result()
        other = GramAccumulator.from_state(local, H, {"G": torch.from_numpy(part["G"]), "inv": part["inv"],
                                                      "columns": part["columns"], "slices": 1},
                                           memory_budget=memory_budget, batch_size=batch_size)
        acc.merge(other)
        done.append(p)
        computed.append(p)
        if path is not None:
            _save(path, key, acc, done)
        if on_slice is not None:
            on_slice(len(done), slices)
    return DistributedGram(acc, slices, sorted(computed))
