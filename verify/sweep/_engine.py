"""Run a sweep: every (cell, seed) not yet in the store, in parallel through joblib, written by the driver.

Execution is joblib's: ``backend="loky"`` (processes on this machine, ``jobs`` of them; one job
runs in-process) or ``backend="dask"`` (joblib's Dask backend on a ``distributed`` cluster at
``scheduler``). Workers only compute and return rows; the driver commits each row to SQLite
as it arrives (one transaction per row), so a killed run keeps every finished row and a rerun
computes only the missing ones.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

from .._store import DEFAULT_STORE
from ._spec import SweepSpec
from ._store import finished, open_store, register_sweep, write_row
from ._tasks import resolve_task

__all__ = ["Engine", "SweepCellWarning", "SweepRun", "run_sweep"]


class SweepCellWarning(UserWarning):
    """Some cells raised warnings (e.g. a learner that did not converge); each row stores its own."""

BACKENDS = ("loky", "dask")


@dataclass(frozen=True)
class Engine:
    """How a sweep executes.

    Attributes
    ----------
    jobs : parallel workers (loky processes; with Dask, the most tasks in flight; -1 = all cores)
    backend : "loky" (this machine) or "dask" (a distributed cluster; needs the ``dask`` extra)
    scheduler : address of the Dask scheduler ("tcp://host:8786"), required with backend "dask"
    threads : torch CPU threads inside each cell (default 1: cells run side by side)
    retry_failed : rerun cells whose stored row failed (default True); False keeps them as cached
    """

    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    threads: int = 1
    retry_failed: bool = True

    def __post_init__(self):
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or not (self.jobs >= 1 or self.jobs == -1):
            raise ValueError(f"jobs must be an int >= 1 or -1 (all cores); got {self.jobs!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.backend!r}")
        if self.backend == "dask" and not (isinstance(self.scheduler, str) and self.scheduler):
            raise ValueError(f"backend 'dask' needs scheduler, the scheduler's address (tcp://host:port); "
                             f"got {self.scheduler!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be an int >= 1; got {self.threads!r}")


@dataclass(frozen=True)
class SweepRun:
    """What one call of :func:`run_sweep` did: counts of rows computed (done, failed) and skipped (cached);
    ``warned`` counts the done rows that raised warnings (stored with the row)."""

    name: str
    store: str
    total: int
    done: int
    failed: int
    cached: int
    seconds: float
    warned: int = 0


def _clean_metrics(metrics) -> dict:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"a task must return a dict of numbers; got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 0) == 0:
            v = v.item()  # numpy / torch scalars
        if not isinstance(k, str) or not isinstance(v, Real):
            raise TypeError(f"a task must return a dict of str → number; got {k!r}: {type(v).__name__}")
        out[k] = int(v) if isinstance(v, bool) else v
    return out


def _run_cell(fn: Callable, config: Mapping, cell: str, seed_index: int, seed: int, threads: int) -> dict:
    """Worker side: run one (cell, seed), never raise; return the row for the driver to store."""
    started, t0 = time.time(), time.perf_counter()
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics, status, error = _clean_metrics(fn(dict(config), seed)), "done", None
    except Exception as err:  # noqa: BLE001 - a failing cell is recorded; the sweep goes on
        tb = traceback.extract_tb(err.__traceback__)
        where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        metrics, status, error = None, "failed", f"{type(err).__name__}: {err}{where}"
    finally:
        torch.set_num_threads(previous)
    seen = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught) if status == "done" else {}
    return {"cell": cell, "seed_index": seed_index, "seed": seed, "config": dict(config), "metrics": metrics,
            "status": status, "error": error,
            "warnings": "\n".join(seen) or None, "started": started, "seconds": time.perf_counter() - t0,
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _as_spec(spec) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        from ._spec import load_spec

        return load_spec(spec)
    if isinstance(spec, Mapping):
        return SweepSpec.from_dict(spec)
    raise TypeError(f"spec must be a SweepSpec, a TOML path or a dict; got {type(spec).__name__}")


def run_sweep(spec, *, store=DEFAULT_STORE, engine: Engine | None = None, task: Callable | None = None,
              progress: Callable[[str], None] | None = None) -> SweepRun:
    """Run every (cell, seed) of ``spec`` that ``store`` does not hold yet; return the counts.

    Parameters
    ----------
    spec : SweepSpec, path of a TOML spec, or a dict with the spec's keys
    store : path of the SQLite results database (default ``results/logitrank.sqlite``)
    engine : :class:`Engine` (default: one job, in-process)
    task : the task function itself, for a task not importable by name (e.g. defined in a script);
        ``spec.task`` still names it in the store
    progress : called with "done", "failed" or "cached" once per row (the CLI's progress bar)

    Returns
    -------
    SweepRun
    """
    from joblib import Parallel, delayed, parallel_config

    spec = _as_spec(spec)
    engine = Engine() if engine is None else engine
    fn = resolve_task(spec.task) if task is None else task
    cells = spec.cells()
    validate = getattr(fn, "validate", None)
    if validate is not None:
        for cell in cells:
            validate(cell.config)
    t0 = time.perf_counter()
    conn = open_store(store)
    try:
        register_sweep(conn, spec.name, spec.task, spec.to_dict(), time.time())
        stored = finished(conn, spec.name)
        keep = {"done"} if engine.retry_failed else {"done", "failed"}
        todo, cached = [], 0
        for cell in cells:
            for i, seed in enumerate(cell.seeds):
                if stored.get((cell.hash, seed)) in keep:
                    cached += 1
                    if progress is not None:
                        progress("cached")
                else:
                    todo.append(delayed(_run_cell)(fn, cell.config, cell.hash, i, seed, engine.threads))
        counts = {"done": 0, "failed": 0, "warned": 0}
        if todo:
            client = None
            if engine.backend == "dask":
                try:
                    from distributed import Client
                except ImportError as err:
                    raise ImportError("backend 'dask' needs the dask extra: pip install 'logitrank[dask]'") from err
                try:
                    client = Client(engine.scheduler, set_as_default=False, timeout=15)
                except (OSError, TimeoutError) as err:
                    raise ValueError(f"scheduler {engine.scheduler!r}: no Dask scheduler answered ({err})") from None
                config = parallel_config(backend="dask", n_jobs=engine.jobs, client=client)
            else:
                config = parallel_config(backend="loky", n_jobs=engine.jobs)
            try:
                with config:
                    rows = Parallel(return_as="generator_unordered", batch_size=1)(todo)
                    for row in rows:
                        write_row(conn, spec.name, row)
                        counts[row["status"]] += 1
                        counts["warned"] += row["warnings"] is not None
                        if progress is not None:
                            progress(row["status"])
            finally:
                if client is not None:
                    client.close()
    finally:
        conn.close()
    if counts["warned"]:
        warnings.warn(f"sweep {spec.name!r}: {counts['warned']} of {counts['done']} finished rows raised warnings; "
                      f"they are stored in the rows' 'warnings' column", SweepCellWarning, stacklevel=2)
    return SweepRun(spec.name, str(store), sum(len(c.seeds) for c in cells), counts["done"], counts["failed"],
                    cached, time.perf_counter() - t0, counts["warned"])

