"""Run a sweep: every (cell, seed) not yet in the store, in parallel through joblib, written by the driver.

Execution is joblib's: ``backend="loky"`` (processes on this machine, ``jobs`` of them; one job
runs in-process) or ``backend="dask"`` (joblib's Dask backend on a ``distributed`` cluster at
``scheduler``). Workers only compute and return rows; the driver commits each row to SQLite
as it arrives (one transaction per row), so a killed run keeps every finished row and a rerun
computes only the missing ones. Rows run in a shuffled order fixed by the spec (:func:`_shuffled`), so
that progress rates and ETAs describe the whole grid.

Before any cell runs, every cell of the grid is checked against its task (the task's
``validate``): a bad value is an error naming the key, the value and the cell, not a failed row.
Rows whose stored digest no longer matches are errors too, unless ``Engine(recompute=True)``.

Workers never outlive the driver: a loky worker watches its parent process and exits within
:data:`PARENT_POLL_S` seconds when the driver is gone (``kill -9`` included), instead of idling
for loky's five-minute reuse timeout.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

from ..._store import DEFAULT_STORE
from ._spec import SweepSpec
from ._store import DamagedRowError, damaged_message, open_store, register_sweep, stored_rows, write_row
from ._tasks import resolve_task

__all__ = ["Engine", "SweepCellWarning", "SweepRun", "run_sweep", "validate_cells"]

#: seconds between a worker's checks that its driver is still alive
PARENT_POLL_S = 0.5


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
    retry_failed : rerun cells whose stored row failed (default False: a failure is a result, kept
        and counted as cached; rerun them after fixing the cause)
    recompute : recompute stored rows that are damaged (digest mismatch) or failed (default False:
        a damaged row is an error naming it)
    """

    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    threads: int = 1
    retry_failed: bool = False
    recompute: bool = False

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
        for key in ("retry_failed", "recompute"):
            if not isinstance(getattr(self, key), bool):
                raise TypeError(f"{key} must be True or False; got {getattr(self, key)!r}")


@dataclass(frozen=True)
class SweepRun:
    """What one call of :func:`run_sweep` did: counts of rows computed (done, failed) and skipped (cached);
    ``warned`` counts the done rows that raised warnings (stored with the row); ``first_error`` is
    the configuration and error of the first row that failed in this call (None when none did);
    ``kept_failed`` counts the cached rows that had failed in an earlier call (kept, not retried)."""

    name: str
    store: str
    total: int
    done: int
    failed: int
    cached: int
    seconds: float
    warned: int = 0
    first_error: str | None = None
    kept_failed: int = 0


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


_WATCHDOG: list = []


def _exit_with_parent(parent: int) -> None:
    """In a worker process started by the driver ``parent``: exit as soon as the driver is gone (once per process)."""
    if _WATCHDOG or os.getpid() == parent or os.getppid() != parent:
        return  # in-process, already watching, or not the driver's child (then the driver cannot strand it)

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)  # the driver died (its children are re-parented): nothing left to return results to

    thread = threading.Thread(target=watch, name="logitrank-sweep-parent-watch", daemon=True)
    thread.start()
    _WATCHDOG.append(thread)


def _run_cell(fn: Callable, config: Mapping, cell: str, seed_index: int, seed: int, threads: int,
              parent: int | None = None) -> dict:
    """Worker side: run one (cell, seed), never raise; return the row for the driver to store."""
    if parent is not None:
        _exit_with_parent(parent)
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


def _describe(config: Mapping) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.items())


def validate_cells(spec: SweepSpec, fn: Callable) -> None:
    """Check every cell of ``spec`` with ``fn.validate`` (when the task has one) before any runs.

    Raises the task's TypeError or ValueError with the cell added: its position and configuration.
    """
    validate = getattr(fn, "validate", None)
    if validate is None:
        return
    cells = spec.cells()
    for k, cell in enumerate(cells, 1):
        try:
            validate(cell.config)
        except (TypeError, ValueError) as err:
            raise type(err)(f"sweep {spec.name!r}, cell {k} of {len(cells)} ({_describe(cell.config)}): {err}") from None


def plan_rows(spec: SweepSpec, stored: Mapping, damaged: list, engine: Engine, store) -> tuple[list, list]:
    """The (cell, seed index, seed) rows to compute and those cached, given the intact stored statuses.

    Damaged rows of this spec raise :class:`DamagedRowError` unless ``engine.recompute``.
    """
    mine = {(c.hash, s) for c in spec.cells() for s in c.seeds}
    bad = [r for r in damaged if (r["cell"], int(r["seed"])) in mine]
    if bad and not engine.recompute:
        raise DamagedRowError(damaged_message(store, bad))
    keep = {"done"} if (engine.retry_failed or engine.recompute) else {"done", "failed"}
    todo, cached = [], []
    for cell in spec.cells():
        for i, seed in enumerate(cell.seeds):
            status = stored.get((cell.hash, seed), (None, None))[0]
            (cached if status in keep else todo).append((cell, i, seed))
    return todo, cached


def _shuffled(rows: list, seed: int) -> list:
    """``rows`` in an order drawn from ``seed``: a grid lists its cheap corner first, so in grid order the
    rate of the first rows (and an ETA from it) says little about the rest; in a shuffled order it is
    the grid's average. Each row's result does not depend on when it runs (its seed is its own)."""
    import numpy as np

    order = np.random.default_rng([seed, len(rows)]).permutation(len(rows))
    return [rows[i] for i in order]


def _parallel_config(engine: Engine) -> tuple:
    """(joblib configuration, Dask client or None) for ``engine``'s backend; the client is connected here."""
    from joblib import parallel_config

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
    return config, client


def _write_rows(conn, name: str, todo: list, counts: dict, progress: Callable[[str], None] | None) -> str | None:
    """Run ``todo`` under the active joblib configuration and commit each row as it arrives, counting its status
    in ``counts``; → the first failed row's description (None when none failed)."""
    from joblib import Parallel

    first_error = None
    rows = Parallel(return_as="generator_unordered", batch_size=1)(todo)
    for row in rows:
        write_row(conn, name, row)
        counts[row["status"]] += 1
        counts["warned"] += row["warnings"] is not None
        if row["status"] == "failed" and first_error is None:
            first_error = f"{_describe(row['config'])}: {row['error']}"
        if progress is not None:
            progress(row["status"])
    return first_error


def run_sweep(spec, *, store=DEFAULT_STORE, engine: Engine | None = None, task: Callable | None = None,
              progress: Callable[[str], None] | None = None, allow_import_task: bool = False) -> SweepRun:
    """Run every (cell, seed) of ``spec`` that ``store`` does not hold yet; return the counts.

    Parameters
    ----------
    spec : SweepSpec, path of a TOML spec, or a dict with the spec's keys
    store : path of the SQLite results database (default ``results/logitrank.sqlite``)
    engine : :class:`Engine` (default: one job, in-process; failed rows kept, damaged rows an error)
    task : the task function itself, for a task not importable by name (e.g. defined in a script);
        ``spec.task`` still names it in the store
    progress : called with "done", "failed" or "cached" once per row (the CLI's progress lines)
    allow_import_task : let ``spec.task`` name any ``"package.module:function"``, imported and called
        on every worker (default False: only registered tasks, so a spec file cannot run code)

    Returns
    -------
    SweepRun

    Raises
    ------
    TypeError, ValueError
        A bad spec, engine or task, or a cell its task rejects (named), before any cell runs.
    DamagedRowError
        A stored row of this spec was changed after it was written (``Engine(recompute=True)`` redoes it).
    SweepStoreError
        SQLite cannot read the store.
    """
    from joblib import delayed

    spec = _as_spec(spec)
    engine = Engine() if engine is None else engine
    if not isinstance(engine, Engine):
        raise TypeError(f"engine must be an Engine; got {type(engine).__name__}")
    fn = resolve_task(spec.task, allow_import=allow_import_task) if task is None else task
    validate_cells(spec, fn)
    cells = spec.cells()
    t0 = time.perf_counter()
    conn = open_store(store)
    counts = {"done": 0, "failed": 0, "warned": 0}
    first_error = None
    try:
        stored, damaged = stored_rows(conn, spec.name, path=store)
        rows_todo, rows_cached = plan_rows(spec, stored, damaged, engine, store)
        register_sweep(conn, spec.name, spec.task, spec.to_dict(), time.time())
        for _ in rows_cached:
            if progress is not None:
                progress("cached")
        parent = os.getpid() if engine.backend == "loky" and engine.jobs != 1 else None
        todo = [delayed(_run_cell)(fn, cell.config, cell.hash, i, seed, engine.threads, parent)
                for cell, i, seed in _shuffled(rows_todo, spec.seed)]
        if todo:
            config, client = _parallel_config(engine)
            try:
                with config:
                    first_error = _write_rows(conn, spec.name, todo, counts, progress)
            finally:
                if client is not None:
                    client.close()
    finally:
        conn.close()
    if counts["warned"]:
        warnings.warn(f"sweep {spec.name!r}: {counts['warned']} of {counts['done']} finished rows raised warnings; "
                      f"they are stored in the rows' 'warnings' column", SweepCellWarning, stacklevel=2)
    kept_failed = sum(stored[(cell.hash, seed)][0] == "failed" for cell, _, seed in rows_cached)
    return SweepRun(spec.name, str(store), sum(len(c.seeds) for c in cells), counts["done"], counts["failed"],
                    len(rows_cached), time.perf_counter() - t0, counts["warned"], first_error, kept_failed)
