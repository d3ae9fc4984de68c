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

Parity with one process (issue 32, item 6). A model whose rounding depends on what shares a pass
(a causal network's packed futures in bfloat16) gives bit-equal logit rows only for the same
slices: :func:`distributed_grams` takes explicit cuts (``bounds``), and with ``one_block`` each slice
is one model call, so the spectrum's Dask path cuts at the local path's chunks and its sum differs
from the local one by float64 summation order alone. Several sums (the spectrum's downsizing
segments) are submitted at once, biggest slices first. A worker undoes the nanny's
``MALLOC_TRIM_THRESHOLD_`` (:func:`_tune_malloc`), which cost torch a third of its speed.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from logitrank.algorithms import GramAccumulator

__all__ = ["CheckpointError", "DistributedGram", "GramJob", "distributed_gram", "distributed_grams", "one_block_budget", "slice_cuts"]

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


def adopt_model(name: str, device: str | None, dtype: str | None, model) -> None:
    """Let this process use ``model``, already loaded, for ``name`` on ``device`` in ``dtype`` (the driver's
    own model, which it would otherwise load a second time to check the partial sums against)."""
    _WORKER_MODELS.setdefault((name, device, dtype), model)


#: glibc's mallopt parameters (malloc.h) and what a worker sets them to (:func:`_tune_malloc`)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 * 2**20  # the ceiling of glibc's own dynamic mmap threshold on 64-bit systems
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD  # what glibc's dynamic rule pairs with it
_MALLOC_TUNED: list = []  # holds one entry once this process was tuned


def _tune_malloc() -> bool:
    """Undo, once per worker process, what the nanny's ``MALLOC_TRIM_THRESHOLD_`` does to torch; → whether it did.

    ``distributed``'s nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (its config
    ``distributed.nanny.pre-spawn-environ``). Setting that variable also switches off glibc's dynamic
    mmap threshold, so every activation above 128 KiB is mapped and unmapped on each use and freed heap
    is handed back at once: a SmolLM2 bfloat16 block on one thread ran 1.5× the CPU time of the same
    process without the variable (system time 0.26 → 3.2 s, page faults 0.14 M → 1.75 M). Setting the
    mmap threshold to 32 MiB alone left 0.5–0.66 M faults; with the trim threshold at 64 MiB as well
    the process runs as without the variable (0.07 M faults, ``benchmarks/bench_dask_parity.py``).
    Nothing happens where the variable is not set or glibc's ``mallopt`` is not there.
    """
    if _MALLOC_TUNED or "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    _MALLOC_TUNED.append(True)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def one_block_budget(n: int, k: int, futures: int) -> int:
    """A ``memory_budget`` under which :class:`GramAccumulator` takes ``futures`` futures of n histories × k
    columns as one block (its block path allows 3·8 bytes per cell; 32 leaves room)."""
    return 32 * max(1, n) * max(1, k) * max(1, futures)


def _slice_gram(model, device, dtype, histories, futures, columns, settings: dict) -> dict:
    """One task: the partial Gram of one slice of the futures → {"G": (n, n) float64 array, "inv", "columns"}.

    With ``settings["one_block"]`` the slice's (n, |slice|·k) logit matrix is formed by one model call
    whatever ``memory_budget`` says, as the local spectrum path forms each chunk; ``max_positions``
    (when given) raises the model's positions per pass as the driver raised its own."""
    _tune_malloc()
    torch.set_num_threads(int(settings.get("threads", 1)))
    m = _worker_model(model, device, dtype)
    if settings.get("max_positions") and hasattr(m, "max_positions"):
        m.max_positions = max(m.max_positions, int(settings["max_positions"]))
    budget = settings["memory_budget"]
    if settings.get("one_block"):
        k = m.vocab_size if columns is None else np.asarray(columns).shape[1]
        budget = max(budget, one_block_budget(len(histories), k, len(futures)))
    acc = GramAccumulator(m, histories, memory_budget=budget, batch_size=settings["batch_size"])
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


def _key(model, histories, futures, columns, slices: int, dtype, bounds: list | None = None) -> str:
    """A digest of the setting: model name (or type), the weights' dtype, H, F, the columns and the slicing
    (``slices`` equal slices, or the explicit ``bounds``).

    The dtype is that of the model the driver holds (a float32 sum must never resume from bfloat16
    slices); the device is not in it, so slices from CPU and GPU workers may meet (rounding apart)."""
    h = hashlib.sha256()
    h.update((model if isinstance(model, str) else type(model).__name__).encode())
    h.update(f"|dtype={dtype}|".encode())
    h.update(json.dumps([list(map(int, x)) for x in histories]).encode())
    h.update(json.dumps([list(map(int, x)) for x in futures]).encode())
    h.update(b"none" if columns is None else np.ascontiguousarray(np.asarray(columns, dtype=np.int64)).tobytes())
    h.update(str(slices).encode() if bounds is None else f"bounds={json.dumps(bounds)}".encode())
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




@dataclass(frozen=True)
class GramJob:
    """One Gram sum of :func:`distributed_grams`: G_j = L(H, F_j) L(H, F_j)ᵀ for the futures F_j.

    Attributes
    ----------
    futures : sequence of token sequences
        F_j.
    columns : (|F_j|, k) integer array, optional
        The k token columns of each future (default every token).
    slices : int >= 1
        How many equal slices (tasks) F_j is cut into, when ``bounds`` is not given.
    bounds : sequence of int, optional
        Explicit cuts 0 = b_0 < b_1 < … < b_s = |F_j|: slice p is F_j[b_p : b_{p+1}] (e.g. the chunks of
        the local spectrum path, so that each slice's logit rows are the ones that path computes).
    checkpoint : folder, optional
        Where G_j's running sum is checkpointed (see :func:`distributed_gram`).
    """

    futures: Sequence
    columns: object = None
    slices: int = 16
    bounds: Sequence[int] | None = None
    checkpoint: object = None


@dataclass
class _Run:
    """One job in flight: its futures F (list of tuples), columns ((|F|, k) int64 array or None), cuts, key,
    running sum, checkpoint folder, finished slices (resumed ones included) and slices computed here."""

    F: list
    columns: object
    bounds: list
    key: str
    acc: GramAccumulator
    path: Path | None
    done: list
    computed: list

    @property
    def slices(self) -> int:
        return len(self.bounds) - 1


def _cuts(F: list, slices, bounds) -> list:
    """The slice boundaries of F: ``bounds`` checked (0 < … < |F|), else ``slices`` near-equal slices."""
    if bounds is not None:
        b = [int(x) for x in bounds]
        rising = len(b) >= 2 and b[0] == 0 and b[-1] == len(F) and all(x < y for x, y in itertools.pairwise(b))
        if not rising and not (b == [0, 0] and not F):
            raise ValueError(f"bounds must rise strictly from 0 to |F| = {len(F)}; got {list(bounds)[:8]}")
        return b
    return slice_cuts(len(F), slices)


def slice_cuts(m: int, slices: int) -> list:
    """The cuts of ``slices`` near-equal slices of m futures (at most m slices; one when m = 0).

    >>> slice_cuts(10, 4), slice_cuts(2, 5)
    ([0, 2, 5, 8, 10], [0, 1, 2])
    """
    if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
        raise ValueError(f"slices must be an int >= 1; got {slices!r}")
    slices = min(slices, max(1, m))
    return [round(i * m / slices) for i in range(slices + 1)]


def _begin(job: GramJob, model, local, H: list, *, keyed: bool, sizes: dict) -> _Run:
    """A job's run: its futures, columns and cuts checked, its checkpoint resumed (``sizes``: the
    accumulator's memory_budget and batch_size)."""
    F = [tuple(int(t) for t in f) for f in job.futures]
    columns = job.columns
    if columns is not None:
        columns = np.asarray(columns, dtype=np.int64)
        if columns.ndim != 2 or columns.shape[0] != len(F):
            raise ValueError(f"columns must be a (|F|, k) = ({len(F)}, k) integer array; got shape {columns.shape}")
    bounds = _cuts(F, job.slices, job.bounds)
    slices = len(bounds) - 1
    key = _key(model, H, F, columns, slices, getattr(local, "dtype", None), None if job.bounds is None else bounds)
    acc = GramAccumulator(local, H, **sizes)
    path, acc, done = _resume(job.checkpoint, key, acc, local, H, slices=slices, keyed=keyed, **sizes)
    return _Run(F, columns, bounds, key, acc, path, done, [])


def _submit(client, model, H: list, runs: list, todo: list, *, device, dtype, settings: dict, retries: int) -> dict:
    """Ship ``model`` (an object, once) and submit one task per (run, slice) of ``todo`` → {Dask future: (run, slice)}.

    Bigger slices get a higher priority, so a few workers end the sum about together (longest first)."""
    # a fresh key per call (hash=False): a scatter of the same model by an earlier call may be released meanwhile
    shipped = client.scatter(model, broadcast=True, hash=False) if not isinstance(model, str) else model
    call = uuid.uuid4().hex[:8]  # task keys of this call only: an earlier call's result under the same key
    tasks = {}                   # (other settings, e.g. one_block) may still sit on the cluster
    for run, p in todo:
        a, b = run.bounds[p], run.bounds[p + 1]
        cols = None if run.columns is None else run.columns[a:b]
        fut = client.submit(_slice_gram, shipped, device, dtype, H, run.F[a:b], cols, settings, retries=retries,
                            pure=False, key=f"gram-slice-{run.key[:12]}-{p}-{call}", priority=b - a)
        tasks[fut] = (run, p)
    return tasks


def _absorb(run: _Run, p: int, part: dict, local, H: list, sizes: dict) -> None:
    """Add slice p's partial sum to the run's running sum and checkpoint it."""
    other = GramAccumulator.from_state(local, H, {"G": torch.from_numpy(part["G"]), "inv": part["inv"],
                                                  "columns": part["columns"], "slices": 1}, **sizes)
    run.acc.merge(other)
    run.done.append(p)
    run.computed.append(p)
    if run.path is not None:
        _save(run.path, run.key, run.acc, run.done)


def distributed_grams(
    model,
    histories: Sequence,
    jobs: Sequence[GramJob],
    *,
    client,
    device: str | None = None,
    dtype: str | None = None,
    memory_budget: int = 2**28,
    batch_size: int = 4096,
    threads: int = 1,
    retries: int = 3,
    max_slices: int | None = None,
    keyed: bool = False,
    one_block: bool = False,
    max_positions: int | None = None,
    on_slice: Callable[[int, int, int, int], None] | None = None,
) -> list:
    """Several Gram sums over the same histories H on one Dask ``client`` at once (one task per slice, all
    submitted together, so no job waits for the slowest slice of another).

    ``jobs`` are :class:`GramJob` (futures, columns, slicing, checkpoint of each sum); the other arguments
    are those of :func:`distributed_gram`, plus ``one_block`` (each slice's logit matrix formed by one model
    call whatever ``memory_budget``: the local spectrum path's chunk when the cuts are its chunks) and
    ``max_positions`` (raise the worker models' positions per pass to it, as a GPU driver does).
    ``max_slices`` counts new slices over all jobs, the first jobs first; ``on_slice(job, slice, done,
    total)`` is called after slice ``slice`` of job ``job`` is added, ``done`` of
    the job's ``total`` slices being finished (resumed ones included).

    Returns
    -------
    list of DistributedGram, one per job
    """
    from distributed import as_completed

    H = [tuple(int(t) for t in h) for h in histories]
    local = model if not isinstance(model, str) else _worker_model(model, device, dtype)
    sizes = {"memory_budget": memory_budget, "batch_size": batch_size}
    runs = [_begin(job, model, local, H, keyed=keyed, sizes=sizes) for job in jobs]
    todo = [(run, p) for run in runs for p in range(run.slices) if p not in set(run.done)]
    if max_slices is not None:
        todo = todo[:max_slices]
    settings = {**sizes, "threads": threads, "one_block": one_block, "max_positions": max_positions}
    tasks = _submit(client, model, H, runs, todo, device=device, dtype=dtype, settings=settings, retries=retries)
    for fut in as_completed(list(tasks)):
        run, p = tasks[fut]
        _absorb(run, p, fut.result(), local, H, sizes)
        if on_slice is not None:
            on_slice(runs.index(run), p, len(run.done), run.slices)
    return [DistributedGram(run.acc, run.slices, sorted(run.computed)) for run in runs]


def distributed_gram(
    model,
    histories: Sequence,
    futures: Sequence,
    *,
    client,
    columns=None,
    slices: int = 16,
    bounds: Sequence[int] | None = None,
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
        How many tasks the futures are cut into (near-equal slices).
    bounds : sequence of int, optional
        Explicit cuts 0 < b_1 < … < |F| instead of ``slices`` (see :class:`GramJob`).
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
    report = None if on_slice is None else (lambda _job, _p, done, total: on_slice(done, total))
    (out,) = distributed_grams(model, histories, [GramJob(futures, columns, slices, bounds, checkpoint)],
                               client=client, device=device, dtype=dtype, memory_budget=memory_budget,
                               batch_size=batch_size, threads=threads, retries=retries, max_slices=max_slices,
                               keyed=keyed, on_slice=report)
    return out
