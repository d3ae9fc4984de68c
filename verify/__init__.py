"""verify — metrics, the claims registry and its checks, the ``logitrank`` CLI.

Symbols (B, t, T, V, d, n, k) are defined in the :mod:`logitrank.synth` package docstring.
"""

from . import _claim_sweep  # noqa: F401  (adds the "claim:ID" sweep tasks to the engine)
from ._alpha_trend import (
    SaturatingFit,
    TrendPoint,
    TrendVerdict,
    fit_saturating,
    judge_alpha_trend,
    judge_over_seeds,
    trend_point,
)
from ._figures import plot_kl_to_rank, plot_principal_angles, plot_singular_values
from ._ledger import LEDGER, Claim
from ._metrics import TVEstimate, kl_divergence, tv_distance, tv_estimate, tv_monte_carlo
from ._real_figures import plot_alpha_vs_n
from ._registry import CheckConfig, ClaimResult, register, registered, run_check

__all__ = [
    "LEDGER",
    "CheckConfig",
    "Claim",
    "ClaimResult",
    "SaturatingFit",
    "TVEstimate",
    "TrendPoint",
    "TrendVerdict",
    "fit_saturating",
    "judge_alpha_trend",
    "judge_over_seeds",
    "kl_divergence",
    "plot_alpha_vs_n",
    "plot_kl_to_rank",
    "plot_principal_angles",
    "plot_singular_values",
    "register",
    "registered",
    "run_check",
    "trend_point",
    "tv_distance",
    "tv_estimate",
    "tv_monte_carlo",
]
