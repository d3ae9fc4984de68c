"""Claims: the ledger of every claim of papers A and B, its checks, their stores and the report.

* :data:`LEDGER` / :class:`Claim` — each claim's statement, source and the rule that judges it;
* :func:`register`, :class:`CheckConfig`, :class:`ClaimResult`, :func:`run_check` — the check API
  (a check is a function ``CheckConfig -> ClaimResult``; seeded checks run over seeds and are judged
  by their rule); :class:`~logitrank.verify.Presets` holds each check's settings per scale;
* :mod:`.checks` — the built-in checks, registered on import;
* :class:`ClaimStore` — claim runs and results in SQLite, resumable, every row digest-checked;
* :func:`write_report` / :func:`update_readme` — ``report.md``, ``report.html`` and the README table;
* :func:`judge_alpha_trend` — E1's rule on α against N (``results-reference/smollm2/E1_TREND_RULE.md``);
  :func:`judge_alpha_trend_joint` — one curve over several corpus cuts (``results-reference/gemma3/``).

Room layering (``tests/test_import_graph.py``): claims import experiments, models, figures and the
shared root modules, never the CLI.
"""

from .._presets import Presets
from . import _claim_sweep  # noqa: F401  (adds the "claim:ID" sweep tasks to the experiments' engine)
from ._alpha_trend import (
    SaturatingFit,
    TrendPoint,
    TrendVerdict,
    fit_saturating,
    judge_alpha_trend,
    judge_over_seeds,
    trend_point,
)
from ._alpha_trend_joint import judge_alpha_trend_joint
from ._check_api import CheckConfig, ClaimResult, register, unregister
from ._claim_store import ClaimStore, StoreDamagedError
from ._ledger import LEDGER, Claim
from ._registry import load_plugin, registered, run_check
from ._report import claims_table, load_results, update_readme, write_report

__all__ = [
    "LEDGER",
    "CheckConfig",
    "Claim",
    "ClaimResult",
    "ClaimStore",
    "Presets",
    "SaturatingFit",
    "StoreDamagedError",
    "TrendPoint",
    "TrendVerdict",
    "claims_table",
    "fit_saturating",
    "judge_alpha_trend",
    "judge_alpha_trend_joint",
    "judge_over_seeds",
    "load_plugin",
    "load_results",
    "register",
    "registered",
    "run_check",
    "trend_point",
    "unregister",
    "update_readme",
    "write_report",
]
