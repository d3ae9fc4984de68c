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
a model, a corpus, an extra; or the check judged nothing) and "error" (the check raised; the reason
holds the traceback's last line).

**Nothing judged is not a verdict.** A check that reports how many instances it judged — an int
under one of the keys :data:`JUDGED_COUNTS` of its ``setting`` or ``figures`` (T1 and T3 report
``models``) — and judged none (every size skipped, zero draws) is reported *not-run* with a reason
that starts "not judged:", never *holds* (nor *fails*). Declared preset bounds
(:class:`~logitrank.verify._presets.Presets` ``minimums``/``min_items``) refuse most such settings
before anything runs; this is the guard for the rest.
"""

from __future__ import annotations

import re
import statistics
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from .._presets import recording
from . import _check_api as _api
from ._check_api import (
    VERDICTS,
    CheckConfig,
    ClaimResult,
    Verdict,
    _Entry,
    register,
    unregister,
)
from ._ledger import LEDGER

__all__ = [
    "ENTRY_POINT_GROUP",
    "JUDGED_COUNTS",
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

#: keys under which a check reports how many instances it judged (in ``setting`` or ``figures``)
JUDGED_COUNTS = ("models", "instances", "points", "judged")
#: entry-point group whose modules are imported to register claims of their own
ENTRY_POINT_GROUP = "logitrank.claims"
_ENTRY_POINTS_LOADED = False
_LOADED_FILES: set[str] = set()


class PluginWarning(UserWarning):
    """A claims plugin (entry point) failed to import; its claims are missing from this run."""


def load_plugin(spec: str) -> None:
    """Import the module ``spec`` (a dotted module name, or a path to a ``.py`` file) so its ``@register`` checks join.

    Raises ValueError naming ``spec`` when it cannot be found or raises on import.
    """
    import importlib
    import importlib.util

    if not isinstance(spec, str) or not spec:
        raise ValueError(f"plugin must be a module name or a .py file; got {spec!r}")
    _load_checks()  # the built-in checks first: a plugin that claims a built-in ID then fails here, naming it
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
            _import_from_here(spec)
    except SystemExit as err:  # a plugin must not end the run silently
        raise ValueError(f"plugin {spec!r} called sys.exit({err.code!r}) while loading") from None
    except ValueError as err:
        raise ValueError(f"plugin {spec!r} could not be loaded: {err}") from err
    except Exception as err:
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        raise ValueError(f"plugin {spec!r} could not be loaded: {last}") from err


def _import_from_here(name: str):
    """Import module ``name``; one not found on ``sys.path`` is looked for in the current folder too
    (``--plugin myclaims`` beside the command, as Python itself would with ``python -m``)."""
    import importlib
    import sys

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        top = name.split(".")[0]
        here = Path.cwd()
        if err.name != top or not ((here / f"{top}.py").is_file() or (here / top / "__init__.py").is_file()):
            raise
        sys.path.insert(0, str(here))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(here))


def registered() -> list[str]:
    """IDs that have a check, in ledger order."""
    _load_checks()
    return [cid for cid in LEDGER if cid in _api._CHECKS]


def check_info(claim_id: str) -> dict:
    """{"seeded": bool, "rule": str} of a registered check."""
    _load_checks()
    if claim_id not in _api._CHECKS:
        raise KeyError(f"claim {claim_id!r} has no registered check; registered: {', '.join(registered())}")
    entry = _api._CHECKS[claim_id]
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
    if claim_id not in _api._CHECKS:
        return ClaimResult(claim_id, "not-run", reason="no check implemented yet")
    entry = _api._CHECKS[claim_id]
    if config.overrides:  # refused before anything runs
        if entry.presets is None:
            raise ValueError(f"claim {claim_id} declares no settings to override; "
                             f"got {', '.join(k for k, _ in config.overrides)}")
        entry.presets.check(dict(config.overrides))
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
    record: dict = {}
    try:
        with recording() as record:
            result = entry.fn(config)
    except Exception as err:  # noqa: BLE001  report, never hide: any error becomes an 'error' verdict naming it
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        result = ClaimResult(claim_id, "error", reason=f"check raised {last}",
                             setting={"traceback": traceback.format_exc(limit=6)})
    if not isinstance(result, ClaimResult) or result.id != claim_id:
        result = ClaimResult(claim_id, "error", reason=f"check of {claim_id} returned {result!r}, not its ClaimResult")
    nothing = _judged_nothing(result)
    if nothing is not None:
        result = replace(result, verdict="not-run", reason=f"not judged: {nothing}; change the settings "
                                                            f"({dict(config.overrides) or 'the preset'}) so that "
                                                            "something is judged")
    result.seconds = round(time.perf_counter() - start, 3)
    result.config = {"preset": config.scale, "overrides": dict(config.overrides), "resolved": dict(record)}
    return result


def _judged_nothing(result: ClaimResult) -> str | None:
    """Why a holds/fails ``result`` judged nothing (a count of :data:`JUDGED_COUNTS` that is 0), else None."""
    if result.verdict not in ("holds", "fails"):
        return None
    for where in ("setting", "figures"):
        found = getattr(result, where)
        for key in JUDGED_COUNTS:
            value = found.get(key) if isinstance(found, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value == 0:
                return f"the check judged no instances ({where}[{key!r}] = 0), so its {result.verdict!r} says nothing"
    return None


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
                       headline=ran[0].headline, spread=spread, per_seed=[r.to_dict() for r in runs],
                       config=dict(ran[0].config))


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
