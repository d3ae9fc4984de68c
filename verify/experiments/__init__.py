"""Experiments: measurements on any model, each a frozen config and a function config → result.

* :mod:`.sweep` — sensitivity sweeps (a grid × seeds over a task; SQLite store, resumable, joblib
  or Dask); its names are re-exported here (:class:`SweepSpec`, :func:`run_sweep`, :func:`load`,
  :func:`summarize`, …);
* :class:`SpectrumConfig` / :func:`compute_spectrum` — the extended logit matrix L(H, F) of a model
  on a corpus (paper A, Appendix A.1.1), its spectrum and power-law exponent α, with
  :data:`SPECTRUM_PRESETS` (quick, full, paper);
* :func:`distributed_gram` — the Gram sum of a large L on a Dask cluster, in resumable slices;
* :func:`cached_logit_matrix` — L(H, F) computed in verified on-disk chunks;
* :func:`hidden_width` — a model's hidden width from outside, as the rank of its logit vectors;
* :func:`sensitivity_study` — one learner setting varied at a time (paper B's robustness).

Room layering (``tests/test_import_graph.py``): experiments import models, figures and the shared
root modules, never claims or the CLI.
"""

from ._distributed_gram import DistributedGram, distributed_gram
from ._matrix_cache import CacheChunkWarning, cached_logit_matrix, matrix_key
from ._sensitivity import sensitivity_study
from ._spectrum import SPECTRUM_PRESETS, SpectrumConfig, SpectrumResult, compute_spectrum, default_lengths
from ._sweep_report import write_sweep_report
from ._width import HiddenWidth, hidden_width
from .sweep import (
    ENTRY_POINT_GROUP,
    FAMILIES,
    TASKS,
    Cell,
    DamagedRowError,
    Engine,
    SweepCellWarning,
    SweepEstimate,
    SweepRun,
    SweepSpec,
    SweepStoreError,
    build_model,
    cell_hash,
    cell_seeds,
    estimate_sweep,
    expand_grid,
    load,
    load_spec,
    plot_sweep,
    registered_tasks,
    resolve_task,
    run_sweep,
    sub_seed,
    summarize,
    validate_cells,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FAMILIES",
    "SPECTRUM_PRESETS",
    "TASKS",
    "CacheChunkWarning",
    "Cell",
    "DamagedRowError",
    "DistributedGram",
    "Engine",
    "HiddenWidth",
    "SpectrumConfig",
    "SpectrumResult",
    "SweepCellWarning",
    "SweepEstimate",
    "SweepRun",
    "SweepSpec",
    "SweepStoreError",
    "build_model",
    "cached_logit_matrix",
    "cell_hash",
    "cell_seeds",
    "compute_spectrum",
    "default_lengths",
    "distributed_gram",
    "estimate_sweep",
    "expand_grid",
    "hidden_width",
    "load",
    "load_spec",
    "matrix_key",
    "plot_sweep",
    "registered_tasks",
    "resolve_task",
    "run_sweep",
    "sensitivity_study",
    "sub_seed",
    "summarize",
    "validate_cells",
    "write_sweep_report",
]
