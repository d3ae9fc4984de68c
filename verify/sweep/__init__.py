"""Sensitivity sweeps: a grid of configurations × seeds over a task, resumable, parallel, stored in SQLite.

A *task* is a function ``(config: dict, seed: int) -> dict of numbers``; a *spec*
(:class:`SweepSpec`, or a TOML file read by :func:`load_spec`) names the task, the grid and the
seeds. :func:`run_sweep` runs the cells the store does not hold yet (joblib processes, or a Dask
cluster through joblib's Dask backend), :func:`load` returns the rows as a tidy DataFrame and
:func:`summarize` their median and IQR over seeds; :func:`plot_sweep` draws them.

Examples
--------
>>> import tempfile, pathlib
>>> from logitrank.verify.sweep import SweepSpec, load, run_sweep
>>> spec = SweepSpec(name="ranks", task="logit_ranks", grid={"d": [1, 2]}, seeds=2, fixed={"V": 2, "T": 4})
>>> db = pathlib.Path(tempfile.mkdtemp()) / "s.sqlite"
>>> run_sweep(spec, store=db).done
4
>>> run_sweep(spec, store=db).cached  # a rerun computes nothing
4
>>> load(db, "ranks").groupby("d")["max_rank"].max().tolist()
[1, 2]
"""

from ._engine import Engine, SweepCellWarning, SweepRun, run_sweep
from ._plot import plot_sweep
from ._spec import Cell, SweepSpec, cell_hash, cell_seeds, expand_grid, load_spec
from ._store import load, summarize
from ._tasks import FAMILIES, TASKS, build_model, resolve_task

__all__ = [
    "FAMILIES",
    "TASKS",
    "Cell",
    "Engine",
    "SweepCellWarning",
    "SweepRun",
    "SweepSpec",
    "build_model",
    "cell_hash",
    "cell_seeds",
    "expand_grid",
    "load",
    "load_spec",
    "plot_sweep",
    "resolve_task",
    "run_sweep",
    "summarize",
]
