"""Sensitivity sweeps: a grid of configurations × seeds over a task, resumable, parallel, stored in SQLite.

A *task* is a function ``(config: dict, seed: int) -> dict of numbers``; a *spec*
(:class:`SweepSpec`, or a TOML file read by :func:`load_spec`) names the task, the grid and the
seeds. :func:`run_sweep` checks every cell against its task, then runs the cells the store does
not hold yet (joblib processes, or a Dask cluster through joblib's Dask backend);
:func:`estimate_sweep` says what a run would compute and how long it would take, without running
it; :func:`load` returns the rows as a tidy DataFrame (each row verified against its digest) and
:func:`summarize` their median, IQR and range over seeds, :func:`sweep_table` as a table to read
(sorted, constant columns folded, empty metrics dropped); :func:`plot_sweep` draws them, a panel
per value of every parameter on neither axis.

A spec is data: its ``task`` names a registered task (built-in, or an entry point of the group
``logitrank.sweep_tasks``); any other ``"package.module:function"`` is imported only with
``allow_import_task=True`` (``--allow-import-task``).

Examples
--------
>>> import tempfile, pathlib
>>> from logitrank.verify.experiments.sweep import SweepSpec, load, run_sweep
>>> spec = SweepSpec(name="ranks", task="logit_ranks", grid={"d": [1, 2]}, seeds=2, fixed={"V": 2, "T": 4})
>>> db = pathlib.Path(tempfile.mkdtemp()) / "s.sqlite"
>>> run_sweep(spec, store=db).done
4
>>> run_sweep(spec, store=db).cached  # a rerun computes nothing
4
>>> load(db, "ranks").groupby("d")["max_rank"].max().tolist()
[1, 2]
"""

from ...figures._sweep import plot_sweep
from ._engine import Engine, SweepCellWarning, SweepRun, run_sweep, validate_cells
from ._estimate import SweepEstimate, estimate_sweep
from ._spec import Cell, SweepSpec, cell_hash, cell_seeds, expand_grid, load_spec
from ._store import DamagedRowError, SweepStoreError, load, summarize
from ._table import SweepTable, sweep_table, table_pages
from ._tasks import ENTRY_POINT_GROUP, FAMILIES, TASKS, build_model, registered_tasks, resolve_task, sub_seed

__all__ = [
    "ENTRY_POINT_GROUP",
    "FAMILIES",
    "TASKS",
    "Cell",
    "DamagedRowError",
    "Engine",
    "SweepCellWarning",
    "SweepEstimate",
    "SweepRun",
    "SweepSpec",
    "SweepStoreError",
    "SweepTable",
    "build_model",
    "cell_hash",
    "cell_seeds",
    "estimate_sweep",
    "expand_grid",
    "load",
    "load_spec",
    "plot_sweep",
    "registered_tasks",
    "resolve_task",
    "run_sweep",
    "sub_seed",
    "summarize",
    "sweep_table",
    "table_pages",
    "validate_cells",
]
