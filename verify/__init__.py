"""verify — metrics, the claims registry and its checks, the ``logitrank`` CLI.

Symbols (B, t, T, V, d, n, k) are defined in the :mod:`logitrank.synth` package docstring.
"""

from ._figures import plot_kl_to_rank, plot_principal_angles, plot_singular_values
from ._ledger import LEDGER, Claim
from ._metrics import TVEstimate, kl_divergence, tv_distance, tv_estimate, tv_monte_carlo
from ._registry import CheckConfig, ClaimResult, register, registered, run_check

__all__ = [
    "tv_distance",
    "kl_divergence",
    "tv_monte_carlo",
    "tv_estimate",
    "TVEstimate",
    "LEDGER",
    "Claim",
    "CheckConfig",
    "ClaimResult",
    "register",
    "registered",
    "run_check",
    "plot_singular_values",
    "plot_kl_to_rank",
    "plot_principal_angles",
]
