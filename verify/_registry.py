"""The claims registry: each ledger ID registers one check returning a :class:`ClaimResult`.

Two kinds of check:

* *theorem* checks (T…) test a statement over many instances in one call and run once;
* *seeded* checks (the empirical E…, X…, B… claims) measure a figure that depends on a random
  draw. The registry runs them once per seed (``config.seed + i`` for i < ``config.n_seeds``) and
  combines the per-seed results: every scalar figure is reported as its median with its
  [min, max] spread, and the verdict follows the check's rule across seeds. The default rule:
  *holds* when every seed holds, *fails* when every seed fails, *mixed* otherwise; *error* when
  any seed raised, *not-run* when any seed could not run. A check may pass its own ``combine``.

Verdicts: "holds", "fails", "mixed" (seeds disagree), "not-run" (an optional piece is missing:
a model, a corpus, an extra) and "error" (the check raised; the reason holds the traceback's last
line).
"""

from __future__ import annotations

import re
import statistics
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from ._ledger import LEDGER, Claim

__all__ = [
    "ENTRY_POINT_GROUP",
    "VERDICTS",
    "CheckConfig",
    "ClaimResult",
    "PluginWarning",
    "Verdict",
    "check_info",
    "default_combine",
    "load_plugin",
    "register",
    "registered",
    "run_check",
    "unregister",
]

Verdict = Literal["holds", "fails", "mixed", "not-run", "error"]
VERDICTS = ("holds", "fails", "mixed", "not-run", "error")
SCALES = ("quick", "full")
#: seeds per seeded check when ``CheckConfig.seeds`` is not given
DEFAULT_SEEDS = {"quick": 3, "full": 5}
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class CheckConfig:
    """How a check runs.

    Attributes
    ----------
    scale : "quick" (CI and the demo) or "full" (the papers' sizes where affordable)
    seed : base seed; seeded checks run seeds ``seed, seed + 1, …``
    out_dir : where results go; figures under :attr:`figure_dir`, caches under ``<out_dir>/cache``
    model : the language model of the real-model experiments ("tiny", "tiny@stepN", "smollm2" or a
        Hugging Face name; see :func:`logitrank.verify.models.load_model`)
    seeds : how many seeds a seeded check runs (default 3 at quick scale, 5 at full)
    """

    scale: str = "quick"
    seed: int = 0
    out_dir: str = "results"
    model: str = "tiny"
    seeds: int | None = None

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}; got {self.scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= _MAX_SEED - 64:
            raise ValueError(f"seed must be an int in [0, 2**63 - 65]; got {self.seed!r}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty model name such as 'tiny' or 'smollm2'; got {self.model!r}")
        if self.seeds is not None and (isinstance(self.seeds, bool) or not isinstance(self.seeds, int)
                                       or not 1 <= self.seeds <= 64):
            raise ValueError(f"seeds must be an int in [1, 64] (how many seeds a seeded check runs); got {self.seeds!r}")

    @property
    def n_seeds(self) -> int:
        """Seeds a seeded check runs."""
        return DEFAULT_SEEDS[self.scale] if self.seeds is None else self.seeds

    @property
    def figure_dir(self) -> Path:
        """``<out_dir>/figures/<model>/<scale>/seed<seed>``: runs of different identity never share figures."""
        model = re.sub(r"[^A-Za-z0-9_.@-]+", "_", self.model).strip("._") or "model"
        return Path(self.out_dir) / "figures" / model / self.scale / f"seed{self.seed}"


@dataclass
class ClaimResult:
    """The outcome of one claim check.

    Attributes
    ----------
    id : ledger ID ("T1", …)
    verdict : "holds" | "fails" | "mixed" | "not-run" | "error"
    setting : what was run (sizes, seeds, tolerances)
    figures : the measured numbers, beside the paper's where it gives one (for a seeded check: the
        median over seeds of every scalar figure)
    reason : why the verdict (always set unless it holds)
    seconds : wall time of the check (all seeds)
    headline : the key in ``figures`` of the claim's main figure
    rule : the verdict rule in words, fixed before the numbers were seen
    spread : for a seeded check, [min, max] over seeds of every scalar figure
    per_seed : for a seeded check, each seed's own result (as a dict)
    """

    id: str
    verdict: Verdict
    setting: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0
    headline: str = ""
    rule: str = ""
    spread: dict = field(default_factory=dict)
    per_seed: list = field(default_factory=list)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {self.verdict!r}")

    def to_dict(self) -> dict:
        return asdict(self)


CheckFn = Callable[[CheckConfig], ClaimResult]
CombineFn = Callable[[Sequence[ClaimResult]], "tuple[str, str]"]


@dataclass(frozen=True)
class _Entry:
    fn: CheckFn
    seeded: bool
    rule: str
    combine: CombineFn | None


_CHECKS: dict[str, _Entry] = {}
_USER_CLAIMS: set[str] = set()
_USER_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
#: entry-point group whose modules are imported to register claims of their own
ENTRY_POINT_GROUP = "logitrank.claims"
_ENTRY_POINTS_LOADED = False
_LOADED_FILES: set[str] = set()


class PluginWarning(UserWarning):
    """A claims plugin (entry point) failed to import; its claims are missing from this run."""


def register(claim_id: str, *, seeded: bool = False, rule: str = "",
             combine: CombineFn | None = None, statement: str | None = None,
             source: str = "user") -> Callable[[CheckFn], CheckFn]:
    """Decorator: make ``fn(config) -> ClaimResult`` the check of ledger claim ``claim_id``.

    ``seeded=True`` runs the check once per seed and combines the results (module docstring);
    ``rule`` states the verdict rule in words; ``combine(results) -> (verdict, reason)`` replaces
    the default rule across seeds.

    A claim of your own: pass an ID that is not in the ledger with its ``statement`` (and
    ``source``); it joins the ledger (after the built-in claims) in this process, and ``logitrank
    check`` runs it when the module holding it is loaded — with ``--plugin MODULE`` (a module name
    or a ``.py`` file) or from an installed package's entry point in the group
    :data:`ENTRY_POINT_GROUP` (``[project.entry-points."logitrank.claims"] mine = "mypkg.claims"``).

    >>> @register("MY1", statement="two plus two is four", rule="holds when 2 + 2 == 4")
    ... def my_check(config):
    ...     return ClaimResult("MY1", "holds" if 2 + 2 == 4 else "fails", figures={"sum": 2 + 2})
    >>> run_check("MY1").verdict
    'holds'
    >>> unregister("MY1")
    """
    if not isinstance(claim_id, str) or not _USER_ID.match(claim_id):
        raise ValueError(f"claim_id must be a str of letters, digits, '_', '.' or '-' starting with a letter; "
                         f"got {claim_id!r}")
    if claim_id not in LEDGER:
        if statement is None:
            raise ValueError(f"unknown claim id {claim_id!r}; the ledger has {', '.join(LEDGER)} "
                             "(to add a claim of your own, pass statement='what it says')")
        if not isinstance(statement, str) or not statement.strip():
            raise ValueError(f"statement must be a non-empty str; got {statement!r}")
        if not isinstance(source, str):
            raise TypeError(f"source must be a str; got {source!r}")
        LEDGER[claim_id] = Claim(claim_id, statement.strip(), source)
        _USER_CLAIMS.add(claim_id)
    elif statement is not None and claim_id not in _USER_CLAIMS and statement != LEDGER[claim_id].statement:
        raise ValueError(f"claim {claim_id} is a built-in ledger claim ({LEDGER[claim_id].statement!r}); "
                         "choose another ID for a claim of your own")
    if combine is not None and not seeded:
        raise ValueError(f"combine= applies across seeds; claim {claim_id} is not seeded")
    if combine is not None and not callable(combine):
        raise TypeError(f"combine must be callable (results -> (verdict, reason)); got {combine!r}")

    def decorate(fn: CheckFn) -> CheckFn:
        if not callable(fn):
            raise TypeError(f"the check of {claim_id} must be callable (config -> ClaimResult); got {fn!r}")
        if claim_id in _CHECKS and _CHECKS[claim_id].fn is not fn:
            raise ValueError(f"claim {claim_id} already has a check ({_CHECKS[claim_id].fn.__qualname__})")
        _CHECKS[claim_id] = _Entry(fn, seeded, rule, combine)
        return fn

    return decorate


def unregister(claim_id: str) -> None:
    """Remove a claim of your own (its check and ledger row); built-in claims cannot be removed."""
    if claim_id not in _USER_CLAIMS:
        raise ValueError(f"claim {claim_id!r} is not a user-registered claim; user claims: {sorted(_USER_CLAIMS)}")
    _USER_CLAIMS.discard(claim_id)
    _CHECKS.pop(claim_id, None)
    LEDGER.pop(claim_id, None)


def load_plugin(spec: str) -> None:
    """Import the module ``spec`` (a dotted module name, or a path to a ``.py`` file) so its ``@register`` checks join.

    Raises ValueError naming ``spec`` when it cannot be found or raises on import.
    """
    import importlib
    import importlib.util

    if not isinstance(spec, str) or not spec:
        raise ValueError(f"plugin must be a module name or a .py file; got {spec!r}")
    try:
        if spec.endswith(".py"):
            path = Path(spec)
            if not path.is_file():
                raise ValueError(f"plugin file {spec!r} does not exist")
            if str(path.resolve()) in _LOADED_FILES:
                return  # loaded once per process, like an imported module
            name = f"logitrank_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            import sys

            sys.modules[name] = module
            try:
                mod_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            _LOADED_FILES.add(str(path.resolve()))
        else:
            importlib.import_module(spec)
    except ValueError:
        raise
    except Exception as err:
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        raise ValueError(f"plugin {spec!r} could not be loaded: {last}") from err


def registered() -> list[str]:
    """IDs that have a check, in ledger order."""
    _load_checks()
    return [cid for cid in LEDGER if cid in _CHECKS]


def check_info(claim_id: str) -> dict:
    """{"seeded": bool, "rule": str} of a registered check."""
    _load_checks()
    if claim_id not in _CHECKS:
        raise KeyError(f"claim {claim_id!r} has no registered check; registered: {', '.join(registered())}")
    entry = _CHECKS[claim_id]
    return {"seeded": entry.seeded, "rule": entry.rule}


def run_check(claim_id: str, config: CheckConfig | None = None, *,
              finished_seeds: Mapping[int, ClaimResult] | None = None,
              on_seed: Callable[[int, ClaimResult], None] | None = None) -> ClaimResult:
    """Run one claim's check (once, or once per seed for a seeded check) and return its result.

    For a seeded check, ``finished_seeds`` maps a seed to its result from an earlier, interrupted
    run of the same settings (reused instead of run again; ``logitrank check --resume``), and
    ``on_seed(seed, result)`` is called after each seed that ran (to store it at once).
    """
    _load_checks()
    if claim_id not in LEDGER:
        raise KeyError(f"unknown claim id {claim_id!r}; the ledger has {', '.join(LEDGER)}")
    config = CheckConfig() if config is None else config
    if claim_id not in _CHECKS:
        return ClaimResult(claim_id, "not-run", reason="no check implemented yet")
    entry = _CHECKS[claim_id]
    start = time.perf_counter()
    if not entry.seeded:
        result = _run_once(claim_id, entry, config)
    else:
        runs = []
        for i in range(config.n_seeds):
            seed = config.seed + i
            if finished_seeds is not None and seed in finished_seeds:
                runs.append(finished_seeds[seed])
                continue
            runs.append(_run_once(claim_id, entry, replace(config, seed=seed)))
            if on_seed is not None:
                on_seed(seed, runs[-1])
        result = _combine(claim_id, entry, config, runs)
    result.seconds = round(time.perf_counter() - start, 3)
    result.rule = result.rule or entry.rule
    result.setting.setdefault("scale", config.scale)
    if entry.seeded:
        result.setting.setdefault("seeds", [config.seed + i for i in range(config.n_seeds)])
    else:
        result.setting.setdefault("seed", config.seed)
    return result


def _run_once(claim_id: str, entry: _Entry, config: CheckConfig) -> ClaimResult:
    start = time.perf_counter()
    try:
        result = entry.fn(config)
    except Exception as err:  # noqa: BLE001  report, never hide: any error becomes an 'error' verdict naming it
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        result = ClaimResult(claim_id, "error", reason=f"check raised {last}",
                             setting={"traceback": traceback.format_exc(limit=6)})
    if not isinstance(result, ClaimResult) or result.id != claim_id:
        result = ClaimResult(claim_id, "error", reason=f"check of {claim_id} returned {result!r}, not its ClaimResult")
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _is_scalar(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def default_combine(results: Sequence[ClaimResult]) -> tuple[str, str]:
    """The default rule across seeds: holds / fails only when every seed agrees, else mixed."""
    verdicts = [r.verdict for r in results]
    for bad in ("error", "not-run"):
        if bad in verdicts:
            first = next(r for r in results if r.verdict == bad)
            return bad, f"{verdicts.count(bad)} of {len(results)} seeds {bad}: {first.reason.splitlines()[0] if first.reason else ''}"
    if all(v == "holds" for v in verdicts):
        return "holds", ""
    n_fail = sum(v == "fails" for v in verdicts)
    reasons = "; ".join(f"seed {r.setting.get('seed', i)}: {r.reason.splitlines()[0]}"
                        for i, r in enumerate(results) if r.verdict != "holds" and r.reason)
    if n_fail == len(results):
        return "fails", f"fails in every seed ({reasons})"
    return "mixed", f"{len(results) - n_fail} of {len(results)} seeds hold ({reasons})"


def _combine(claim_id: str, entry: _Entry, config: CheckConfig, runs: list[ClaimResult]) -> ClaimResult:
    for i, r in enumerate(runs):
        r.setting.setdefault("seed", config.seed + i)
    verdict, reason = (entry.combine or default_combine)(runs)
    if verdict not in VERDICTS:
        raise ValueError(f"combine of {claim_id} returned verdict {verdict!r}; expected one of {VERDICTS}")
    ran = [r for r in runs if r.verdict in ("holds", "fails")] or runs
    keys = [k for k, v in ran[0].figures.items() if _is_scalar(v) and all(_is_scalar(r.figures.get(k)) for r in ran)]
    figures = {k: statistics.median(float(r.figures[k]) for r in ran) for k in keys}
    spread = {k: [min(float(r.figures[k]) for r in ran), max(float(r.figures[k]) for r in ran)] for k in keys}
    setting = {k: v for k, v in ran[0].setting.items() if k != "seed"}
    return ClaimResult(claim_id, verdict, setting=setting, figures=figures, reason=reason,
                       headline=ran[0].headline, spread=spread, per_seed=[r.to_dict() for r in runs])


def _load_checks() -> None:
    from . import checks  # noqa: F401  (importing registers every check)

    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()  # importing the module runs its @register decorators
        except Exception as err:  # noqa: BLE001  a broken plugin must not break the built-in checks, but never silently
            import warnings

            last = traceback.format_exception_only(type(err), err)[-1].strip()
            warnings.warn(f"claims plugin {ep.name!r} ({ep.value}) failed to load: {last}", PluginWarning, stacklevel=2)
