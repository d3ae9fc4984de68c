"""Every experiment's settings in one place: named presets, validated overrides, and the record of what ran.

A check (or any experiment) writes its settings once, as a table of presets::

    _B1 = Presets({
        "quick": {"eps": [1e-6, 1e-3], "n_validation": 16},
        "full":  {"eps": [1e-6, 1e-5, 1e-4, 1e-3], "n_validation": 32},
    })

and reads them with ``spec = config.preset(_B1)`` — the preset of ``config.scale`` with the
``--set key=value`` overrides of ``config.overrides`` applied. Every key of every preset is an
override target; an unknown key is refused with the nearest valid one, and a value must have the
type of the preset's (an int where an int is, a list where a list is, …; in a list of records such
as ``[(V, T, d), …]`` every record must have the length of the preset's). What a run resolved is
recorded (:func:`recording`) so the registry stores it with the result (Hydra's "resolved config
beside every run", without Hydra).

Bounds are declared, never guessed from a name: ``Presets(table, minimums={"draws": 1},
min_items={"sizes": 1})`` refuses ``--set draws=0`` (and any number below 1 anywhere inside a list
setting) and ``--set sizes=[]`` before anything runs, so a count that would make a check judge
nothing (zero draws, no sizes) is an error, not a vacuous *holds*. The presets themselves must
satisfy their bounds.
"""

from __future__ import annotations

import ast
import contextvars
import copy
import difflib
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["Presets", "parse_overrides", "recording"]

_RECORD: contextvars.ContextVar[dict | None] = contextvars.ContextVar("logitrank_preset_record", default=None)


def _freeze(value):
    """Lists → tuples, recursively (so overrides can live in a frozen, hashable config)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _thaw(value, like):
    """An override's frozen value in the shape of the preset's value (tuples back to lists where it had lists)."""
    if isinstance(like, list) and isinstance(value, tuple):
        inner = like[0] if like else None
        return [_thaw(v, inner) for v in value]
    if isinstance(like, tuple) and isinstance(value, tuple):
        return tuple(_thaw(v, like[i] if i < len(like) else None) for i, v in enumerate(value))
    return value


def _type_ok(value, like) -> bool:
    """Does ``value`` fit where the preset has ``like``? bool ≠ int; an int may stand for a float."""
    if like is None:
        return True
    if isinstance(like, bool):
        return isinstance(value, bool)
    if isinstance(like, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(like, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(like, str):
        return isinstance(value, str)
    if isinstance(like, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        if isinstance(like, tuple) and like and not isinstance(like[0], (list, tuple)) and len(set(map(type, like))) > 1:
            return len(value) == len(like) and all(_type_ok(v, w) for v, w in zip(value, like))  # a record
        inner = like[0] if like else None
        return all(_type_ok(v, inner) for v in value)
    return isinstance(value, type(like))


def _record_length(like) -> int | None:
    """The length of the records of a list setting such as ``[(V, T, d), …]`` (all tuples of one length),
    else None."""
    if isinstance(like, list) and like and all(isinstance(x, tuple) for x in like) and len({len(x) for x in like}) == 1:
        return len(like[0])
    return None


def _numbers(value):
    """Every number inside ``value`` (itself, or the items of nested lists and tuples); bools are not numbers."""
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def _shown(value) -> str:
    """A setting's value as the user wrote it (lists, not the frozen tuples)."""
    return json.dumps(value, default=str) if isinstance(value, (list, tuple)) else repr(value)


def _describe(like) -> str:
    if isinstance(like, bool):
        return "true or false"
    if isinstance(like, (list, tuple)):
        return f"a list like {json.dumps(like, default=str)}"
    return f"{type(like).__name__}"


class Presets:
    """A table of named presets ("quick", "full", and "paper" where the paper gives sizes) of one experiment.

    Parameters
    ----------
    table : mapping preset name → mapping key → value
        Every preset must have the same keys. Values are numbers, strings, booleans, or (nested)
        lists/tuples of them.
    pick : callable(config) → preset name, optional
        How a run chooses its preset (default: its scale); see :meth:`name_for`.
    minimums : mapping key → number, optional
        Declared lower bounds: the setting (every number inside it, for a list) must be >= the bound
        (e.g. ``{"draws": 1}``: a count of draws).
    min_items : mapping key → int, optional
        Declared least lengths of list settings (e.g. ``{"sizes": 1}``: at least one size).

    Examples
    --------
    >>> p = Presets({"quick": {"n": 32, "k": 50}, "full": {"n": 256, "k": 50}})
    >>> p.resolve("quick", {"n": 64})
    {'n': 64, 'k': 50}
    >>> p.resolve("quick", {"kk": 64})
    Traceback (most recent call last):
    ...
    ValueError: unknown setting 'kk' for this experiment (did you mean 'k'?); settings: k, n
    """

    def __init__(self, table: Mapping[str, Mapping[str, Any]], *, pick=None, minimums: Mapping | None = None,
                 min_items: Mapping | None = None):
        if not isinstance(table, Mapping) or not table:
            raise ValueError("table must be a non-empty mapping of preset name → settings")
        keys = None
        for name, preset in table.items():
            if not isinstance(preset, Mapping):
                raise TypeError(f"preset {name!r} must be a mapping of settings; got {type(preset).__name__}")
            if keys is not None and set(preset) != keys:
                raise ValueError(f"preset {name!r} has keys {sorted(preset)}; the others have {sorted(keys)}")
            keys = set(preset)
        self.table = {name: dict(preset) for name, preset in table.items()}
        if pick is not None and not callable(pick):
            raise TypeError(f"pick must be a callable (config -> preset name); got {pick!r}")
        self.pick = pick
        self.minimums = self._bounds("minimums", minimums, keys)
        self.min_items = self._bounds("min_items", min_items, keys)
        for name, preset in self.table.items():
            problem = next((p for p in (self._bound_problem(k, v) for k, v in preset.items()) if p), None)
            if problem:
                raise ValueError(f"preset {name!r} breaks its own bounds: {problem}")

    @staticmethod
    def _bounds(what: str, bounds, keys) -> dict:
        bounds = dict(bounds or {})
        for key, bound in bounds.items():
            if key not in keys:
                raise ValueError(f"{what} names {key!r}, which is not a setting of these presets ({', '.join(sorted(keys))})")
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise TypeError(f"{what}[{key!r}] must be a number; got {bound!r}")
        return bounds

    def _bound_problem(self, key: str, value) -> str | None:
        """Why ``value`` breaks the declared bounds of ``key`` (one clause), or None."""
        low = self.minimums.get(key)
        if low is not None:
            below = next((v for v in _numbers(value) if v < low), None)
            if below is not None:
                where = "" if not isinstance(value, (list, tuple)) else " (every number in it)"
                return f"setting {key} must be >= {low}{where}; got {_shown(value)}"
        least = self.min_items.get(key)
        if least is not None and isinstance(value, (list, tuple)) and len(value) < least:
            return f"setting {key} must hold at least {least} item{'s' if least != 1 else ''}; got {_shown(value)}"
        return None

    def name_for(self, config) -> str:
        """The preset a run reads: ``pick(config)`` when the table has a rule of its own (e.g. per model
        kind), else ``config.scale``."""
        return config.scale if self.pick is None else self.pick(config)

    def __getitem__(self, name: str) -> dict:
        """The preset ``name`` as it stands (a copy; no overrides, nothing recorded)."""
        return dict(self.table[name])

    @property
    def names(self) -> list[str]:
        return list(self.table)

    @property
    def keys(self) -> list[str]:
        return sorted(next(iter(self.table.values())))

    def check(self, overrides: Mapping[str, Any]) -> None:
        """Refuse unknown keys (naming the nearest), values of the wrong type or shape, and values outside the
        declared bounds, before anything runs."""
        like = next(iter(self.table.values()))
        for key, value in overrides.items():
            if key not in like:
                near = difflib.get_close_matches(key, self.keys, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ValueError(f"unknown setting {key!r} for this experiment{hint}; settings: {', '.join(self.keys)}")
            if not _type_ok(value, like[key]):
                raise ValueError(f"setting {key} must be {_describe(like[key])}; got {value!r}")
            size = _record_length(like[key])
            if size is not None and any(not isinstance(v, (list, tuple)) or len(v) != size for v in value):
                raise ValueError(f"setting {key} must be a list of records of {size} values each, like "
                                 f"{json.dumps(like[key][:2], default=str)}; got {_shown(value)}")
            problem = self._bound_problem(key, value)
            if problem:
                raise ValueError(problem)

    def resolve(self, name: str, overrides: Mapping[str, Any] | None = None) -> dict:
        """Preset ``name`` with ``overrides`` applied (validated); recorded when a recording is open."""
        if name not in self.table:
            raise ValueError(f"preset must be one of {self.names}; got {name!r}")
        overrides = dict(overrides or {})
        self.check(overrides)
        base = self.table[name]
        # copies: a check that edited a list it was handed must not change the table for the next run
        out = {k: (_thaw(overrides[k], v) if k in overrides else copy.deepcopy(v)) for k, v in base.items()}
        record = _RECORD.get()
        if record is not None:
            record.update({k: _freeze(v) for k, v in out.items()})
        return out


def parse_overrides(items) -> dict[str, Any]:
    """``["n=256", "corpus=docstrings", "eps=[1e-3, 1e-2]"]`` → {"n": 256, "corpus": "docstrings", "eps": [...]}.

    Values are Python/JSON literals (numbers, true/false, lists); anything else is a string.

    Examples
    --------
    >>> parse_overrides(["n=256", "name=tiny", "eps=[0.1, 0.2]", "fast=true"])
    {'n': 256, 'name': 'tiny', 'eps': [0.1, 0.2], 'fast': True}
    """
    out: dict[str, Any] = {}
    for item in items or ():
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE; got {item!r}")
        key, raw = item.split("=", 1)
        key, raw = key.strip(), raw.strip()
        if not key.isidentifier():
            raise ValueError(f"--set: setting names are identifiers like n or top_k; got {key!r}")
        lowered = {"true": "True", "false": "False", "null": "None", "none": "None"}.get(raw.lower(), raw)
        try:
            value = ast.literal_eval(lowered)
        except (ValueError, SyntaxError):
            value = raw
        out[key] = value
    return out


@contextmanager
def recording() -> Iterator[dict]:
    """Collect every setting that :meth:`Presets.resolve` hands out inside the block (one run's record)."""
    record: dict = {}
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)
