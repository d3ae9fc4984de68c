"""verify — metrics, the claims registry and its checks, the ``logitrank`` CLI.

Symbols (B, t, T, V, d, n, k) are defined in the :mod:`synth` package docstring.
"""

from ._ledger import LEDGER, Claim
from ._metrics import kl_divergence, tv_distance
from ._registry import CheckConfig, ClaimResult, register, registered, run_check

__all__ = [
    "tv_distance",
    "kl_divergence",
    "LEDGER",
    "Claim",
    "CheckConfig",
    "ClaimResult",
    "register",
    "registered",
    "run_check",
]
