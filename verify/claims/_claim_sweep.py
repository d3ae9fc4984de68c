"""Claims as sweep tasks (issue 22): ``task = "claim:E1"`` runs a registered claim check per cell.

This module sits above both the registry and the sweep engine: importing it (``logitrank.verify``
does) adds :func:`claim_task` to the engine's task resolvers, so the sweep package never imports the
registry (the checks use the engine: that import would be a circle).

A cell's keys are the check's settings: ``scale`` (preset, default "quick"), ``model`` (for the
real-model claims, default "tiny") and ``out_dir`` (figures and caches, default
``results/sweep-claims``); every other key overrides a setting of the check's presets (validated
against them before any cell runs, like ``logitrank check ID --set key=value``). Each cell runs the
check at its own seed (the cell's seed folded to 31 bits; one seed per cell: the sweep's ``seeds``
replace the check's). The row's
metrics are the result's scalar figures, ``holds`` (0/1) and ``verdict_score`` (holds 1, mixed ½,
fails 0); a check that errs or cannot run (a missing model or corpus) makes the row fail with its
reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ClaimTask", "claim_task"]

_OWN_KEYS = {"scale", "model", "out_dir"}
PREFIX = "claim:"
#: a row's verdict as a number (sweep metrics are numbers): holds 1, mixed ½, fails 0
_SCORES = {"holds": 1.0, "mixed": 0.5, "fails": 0.0}


@dataclass(frozen=True)
class ClaimTask:
    """The sweep task of one claim (picklable: workers rebuild the registry on import)."""

    claim_id: str

    @property
    def task_ref(self) -> str:
        """The name a spec and the store use for this task."""
        return f"claim:{self.claim_id}"

    def _settings(self, config: Mapping, seed: int):
        from ._check_api import CheckConfig

        overrides = {k: v for k, v in config.items() if k not in _OWN_KEYS}
        # the checks derive their own seeds as seed·1000 + k: the cell's 63-bit seed is folded to 31 bits
        return CheckConfig(scale=config.get("scale", "quick"), seed=int(seed) % 2**31, seeds=1,
                           model=config.get("model", "tiny"), out_dir=str(config.get("out_dir", "results/sweep-claims")),
                           overrides=overrides)

    def validate(self, config: Mapping) -> None:
        """The claim exists and has a check; every override names one of its settings with the right type."""
        from . import _check_api as api
        from ._registry import registered

        if self.claim_id not in registered():
            raise ValueError(f"task claim:{self.claim_id}: no registered check; registered: {', '.join(registered())}")
        cfg = self._settings(config, 0)
        entry = api._CHECKS[self.claim_id]
        if cfg.overrides:
            if entry.presets is None:
                raise ValueError(f"claim {self.claim_id} declares no settings to vary; got {dict(cfg.overrides)}")
            entry.presets.check(dict(cfg.overrides))

    def __call__(self, config: Mapping, seed: int) -> dict:
        from ._registry import run_check

        result = run_check(self.claim_id, self._settings(config, seed))
        if result.verdict in ("error", "not-run"):
            raise RuntimeError(f"claim {self.claim_id}: {result.verdict}: {result.reason}")
        figures = {k: float(v) for k, v in result.figures.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
        return {"holds": int(result.verdict == "holds"), "verdict_score": _SCORES[result.verdict], **figures}


def claim_task(task: str) -> ClaimTask | None:
    """``"claim:ID"`` → its :class:`ClaimTask`; any other name → None."""
    if isinstance(task, str) and task.startswith(PREFIX):
        claim_id = task[len(PREFIX):]
        if not claim_id:
            raise ValueError("task 'claim:' needs a claim ID, e.g. 'claim:E1'")
        return ClaimTask(claim_id)
    return None


def _register() -> None:
    from ..experiments.sweep._tasks import TASK_RESOLVERS

    if claim_task not in TASK_RESOLVERS:
        TASK_RESOLVERS.append(claim_task)


_register()
