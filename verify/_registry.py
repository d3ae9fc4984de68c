"""The claims registry: each ledger ID registers one check returning a :class:`ClaimResult`."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from ._ledger import LEDGER

__all__ = ["CheckConfig", "ClaimResult", "register", "registered", "run_check", "Verdict"]

Verdict = Literal["holds", "fails", "not-run"]
SCALES = ("quick", "full")


@dataclass(frozen=True)
class CheckConfig:
    """How a check runs: ``scale`` ("quick" for CI and the demo, "full" for papers' sizes), ``seed``,
    ``out_dir``, where checks that draw figures write them (``<out_dir>/figures``), and ``model``,
    the language model of the real-model experiments E1–E11 ("tiny", "tiny@stepN", "smollm2" or a
    Hugging Face name; see :func:`logitrank.verify.models.load_model`)."""

    scale: str = "quick"
    seed: int = 0
    out_dir: str = "results"
    model: str = "tiny"

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}; got {self.scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int; got {self.seed!r}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty model name such as 'tiny' or 'smollm2'; got {self.model!r}")


@dataclass
class ClaimResult:
    """The outcome of one claim check.

    Attributes
    ----------
    id : ledger ID ("T1", …)
    verdict : "holds" | "fails" | "not-run"
    setting : what was run (sizes, seeds, tolerances)
    figures : the measured numbers, beside the paper's where it gives one
    reason : why the verdict (always set for "not-run" and "fails")
    """

    id: str
    verdict: Verdict
    setting: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0

    def __post_init__(self):
        if self.verdict not in ("holds", "fails", "not-run"):
            raise ValueError(f"verdict must be 'holds', 'fails' or 'not-run'; got {self.verdict!r}")

    def to_dict(self) -> dict:
        return asdict(self)


CheckFn = Callable[[CheckConfig], ClaimResult]
_CHECKS: dict[str, CheckFn] = {}


def register(claim_id: str) -> Callable[[CheckFn], CheckFn]:
    """Decorator: make ``fn(config) -> ClaimResult`` the check of ledger claim ``claim_id``."""
    if claim_id not in LEDGER:
        raise ValueError(f"unknown claim id {claim_id!r}; the ledger has {', '.join(LEDGER)}")

    def decorate(fn: CheckFn) -> CheckFn:
        if claim_id in _CHECKS and _CHECKS[claim_id] is not fn:
            raise ValueError(f"claim {claim_id} already has a check ({_CHECKS[claim_id].__qualname__})")
        _CHECKS[claim_id] = fn
        return fn

    return decorate


def registered() -> list[str]:
    """IDs that have a check, in ledger order."""
    _load_checks()
    return [cid for cid in LEDGER if cid in _CHECKS]


def run_check(claim_id: str, config: CheckConfig | None = None) -> ClaimResult:
    """Run one claim's check; a claim with no check yet, or a check that raises, is "not-run"."""
    _load_checks()
    if claim_id not in LEDGER:
        raise KeyError(f"unknown claim id {claim_id!r}; the ledger has {', '.join(LEDGER)}")
    config = CheckConfig() if config is None else config
    if claim_id not in _CHECKS:
        return ClaimResult(claim_id, "not-run", reason="no check implemented yet")
    start = time.perf_counter()
    try:
        result = _CHECKS[claim_id](config)
    except Exception as err:  # report, never hide: the traceback goes into the reason
        tb = traceback.format_exc(limit=3)
        result = ClaimResult(claim_id, "not-run", reason=f"check raised {type(err).__name__}: {err}\n{tb}")
    result.seconds = round(time.perf_counter() - start, 3)
    result.setting.setdefault("scale", config.scale)
    result.setting.setdefault("seed", config.seed)
    return result


def _load_checks() -> None:
    from . import checks  # noqa: F401  (importing registers every check)
