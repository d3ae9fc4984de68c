"""Figures: one paper-ready style and every ``plot_*`` of the project.

Each function draws one figure from plain numbers (lists, arrays, tidy tables) and saves it as PNG
and PDF through :func:`save_figure`; none computes a result. :mod:`._style` holds the shared style
(column widths, palette, fonts; :func:`paper_style` and :func:`paper_figure`).

Room layering (``tests/test_import_graph.py``): figures import only the shared root modules of
:mod:`logitrank.verify`, never models, experiments, claims or the CLI.
"""

from ._approx import (
    plot_coefficient_norms,
    plot_queries,
    plot_regime_map,
    plot_sensitivity,
    plot_tv_vs_error,
    plot_witnesses,
)
from ._common import plot_kl_to_rank, plot_principal_angles, plot_singular_values, save_figure
from ._learner import plot_query_scaling, plot_tv_curves
from ._real import plot_alpha_vs_n, plot_nearest_kinds, plot_over_training, plot_position_kl, plot_surrogate
from ._spectrum import plot_spectrum_summary, r_squared_text
from ._style import ONE_COLUMN, PALETTE, TWO_COLUMN, finish, math_symbols, paper_figure, paper_style
from ._sweep import LABELS, axis_label, filter_rows, plot_sweep
from ._theory import plot_kl_vs_bound, plot_samples_per_logit, plot_tv_vs_samples

__all__ = [
    "LABELS",
    "ONE_COLUMN",
    "PALETTE",
    "TWO_COLUMN",
    "axis_label",
    "filter_rows",
    "finish",
    "math_symbols",
    "paper_figure",
    "paper_style",
    "plot_alpha_vs_n",
    "plot_coefficient_norms",
    "plot_kl_to_rank",
    "plot_kl_vs_bound",
    "plot_nearest_kinds",
    "plot_over_training",
    "plot_position_kl",
    "plot_principal_angles",
    "plot_queries",
    "plot_query_scaling",
    "plot_regime_map",
    "plot_samples_per_logit",
    "plot_sensitivity",
    "plot_singular_values",
    "plot_spectrum_summary",
    "plot_surrogate",
    "plot_sweep",
    "plot_tv_curves",
    "plot_tv_vs_error",
    "plot_tv_vs_samples",
    "plot_witnesses",
    "r_squared_text",
    "save_figure",
]
