"""Sweep specifications: a grid of cell configurations × seeds over one task.

A spec is a frozen :class:`SweepSpec`; :func:`load_spec` reads one from TOML::

    name = "tv-vs-d"
    task = "learn"                 # a registered task (built-in or entry point; see _tasks.py)
    seeds = 3                      # seeds per cell
    seed = 0                       # base entropy of every cell's seeds (optional, default 0)
    [fixed]                        # merged into every cell (optional)
    family = "random_isan"
    [grid]                         # dict of lists: the cartesian product
    V = [2, 4]
    d = [2, 4, 8]

``grid`` may instead be an array of tables (``[[grid]]``), each a dict of values or lists expanded
on its own; the cells are their union, in order, duplicates dropped. Seeds are derived per cell
by :func:`cell_seeds` from ``numpy.random.SeedSequence`` keyed by the cell's configuration hash,
so they are independent across cells, reproducible, and do not depend on the grid's order.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Cell", "SweepSpec", "cell_hash", "cell_seeds", "expand_grid", "load_spec"]

SPEC_KEYS = ("name", "task", "seeds", "seed", "grid", "fixed", "description")
_MAX_SEEDS = 1000
_MAX_CELLS = 1_000_000
_Scalar = (bool, int, float, str)


def _check_value(where: str, value):
    """A cell value must be a TOML scalar (bool, int, float, str); numpy scalars become Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _Scalar):
        raise TypeError(f"{where} must be a number, bool or string; got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} must be finite; got {value!r}")
    return value


def _plain(value):
    """The grid or a value as plain Python (numpy scalars and arrays, tuples → int/float/list), for JSON."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _check_key(where: str, key) -> str:
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"{where} keys must be identifiers (letters, digits, _); got {key!r}")
    return key


def expand_grid(grid, fixed: Mapping | None = None) -> tuple[dict, ...]:
    """The cells of ``grid``: a dict of lists (cartesian product, keys in the given order) or a list of such dicts.

    A scalar value counts as a one-element list. ``fixed`` entries are added to every cell (a grid
    key may not repeat a fixed one). Duplicate cells are dropped, first occurrence kept.

    Examples
    --------
    >>> expand_grid({"V": [2, 4], "d": [1]})
    ({'V': 2, 'd': 1}, {'V': 4, 'd': 1})
    >>> expand_grid([{"V": 2, "d": [1, 2]}, {"V": 2, "d": 1}])
    ({'V': 2, 'd': 1}, {'V': 2, 'd': 2})
    """
    fixed = {} if fixed is None else fixed
    if not isinstance(fixed, Mapping):
        raise TypeError(f"fixed must be a table (dict) of values; got {type(fixed).__name__}")
    fixed = {_check_key("fixed", k): _check_value(f"fixed.{k}", v) for k, v in fixed.items()}
    parts = [grid] if isinstance(grid, Mapping) else grid
    if isinstance(parts, (str, bytes)) or not isinstance(parts, Sequence) or not parts:
        raise ValueError("grid must be a table of lists (dict of lists) or a non-empty array of such tables; "
                         f"got {grid!r}")
    cells, seen = [], set()
    for i, part in enumerate(parts):
        where = "grid" if isinstance(grid, Mapping) else f"grid[{i}]"
        if not isinstance(part, Mapping):
            raise TypeError(f"{where} must be a table (dict) of lists; got {type(part).__name__}")
        if not part:
            raise ValueError(f"{where} must name at least one key with its values (e.g. d = [2, 4]); got an empty "
                             "table. To run a single cell, give one key one value (d = [2])")
        axes = []
        for key, values in part.items():
            _check_key(where, key)
            if key in fixed:
                raise ValueError(f"{where}.{key} is also in fixed; give each key in one place")
            values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
            if not values:
                raise ValueError(f"{where}.{key} must list at least one value; got []")
            axes.append([(key, _check_value(f"{where}.{key}", v)) for v in values])
        for combo in itertools.product(*axes):
            cell = {**dict(combo), **fixed}
            h = cell_hash(cell)
            if h not in seen:
                seen.add(h)
                cells.append(cell)
            if len(cells) > _MAX_CELLS:
                raise ValueError(f"grid has more than {_MAX_CELLS} cells; split the sweep")
    return tuple(cells)


def cell_hash(config: Mapping, task: str = "") -> str:
    """16 hex digits of SHA-256 of the canonical JSON of ``config`` (keys sorted) and the task reference.

    Examples
    --------
    >>> cell_hash({"a": 1, "b": 2.0}) == cell_hash({"b": 2.0, "a": 1})
    True
    """
    text = json.dumps({"config": dict(config), "task": task}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell_seeds(base_seed: int, cell: str, n: int) -> tuple[int, ...]:
    """The ``n`` seeds of the cell with hash ``cell``: ``SeedSequence(base_seed, spawn_key=(cell, i))``.

    Each seed is an int in [0, 2**63): independent streams per (cell, index), reproducible, and
    unchanged when other cells are added or the grid is reordered.

    Examples
    --------
    >>> cell_seeds(0, "00ff", 2) == cell_seeds(0, "00ff", 3)[:2]
    True
    """
    key = int(cell, 16)
    words = [(key >> (32 * j)) & 0xFFFFFFFF for j in range(2)]
    out = []
    for i in range(n):
        state = np.random.SeedSequence(base_seed, spawn_key=(*words, i)).generate_state(1, dtype=np.uint64)
        out.append(int(state[0]) >> 1)
    return tuple(out)


@dataclass(frozen=True)
class Cell:
    """One grid point: its configuration, hash and seeds."""

    config: Mapping
    hash: str
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ``task`` run on every cell of ``grid`` (plus ``fixed``) for ``seeds`` seeds.

    Attributes
    ----------
    name : sweep name, the key of its rows in the store (letters, digits, ``-_.``)
    task : a registered task name (built-ins :data:`logitrank.verify.experiments.sweep.TASKS`, entry points of the
        group ``logitrank.sweep_tasks``) or ``"package.module:function"`` (imported only when the
        run allows it; see :func:`logitrank.verify.experiments.sweep.resolve_task`)
    grid : dict of lists, or a list of dicts of lists (see :func:`expand_grid`)
    seeds : seeds per cell, 1 … 1000
    seed : base entropy of the cells' seed sequences (>= 0)
    fixed : values added to every cell
    description : free text
    """

    name: str
    task: str
    grid: object
    seeds: int = 1
    seed: int = 0
    fixed: Mapping = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise ValueError(f"name must be a non-empty string of letters, digits, '-', '_' or '.'; got {self.name!r}")
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"task must be a built-in task name or 'package.module:function'; got {self.task!r}")
        for key, lo, hi in (("seeds", 1, _MAX_SEEDS), ("seed", 0, 2**63 - 1)):
            v = getattr(self, key)
            if isinstance(v, np.integer):
                object.__setattr__(self, key, int(v))
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{key} must be an int in [{lo}, {hi}]; got {v!r}")
        if not isinstance(self.description, str):
            raise TypeError(f"description must be a string; got {type(self.description).__name__}")
        object.__setattr__(self, "_cells", expand_grid(self.grid, self.fixed))
        object.__setattr__(self, "fixed", {k: _plain(v) for k, v in dict(self.fixed).items()})
        object.__setattr__(self, "grid", _plain(self.grid))

    def cells(self) -> tuple[Cell, ...]:
        """Every cell with its hash (configuration + task) and seeds, in grid order."""
        out = []
        for config in self._cells:
            h = cell_hash(config, self.task)
            out.append(Cell(config, h, cell_seeds(self.seed, h, self.seeds)))
        return tuple(out)

    def to_dict(self) -> dict:
        return {"name": self.name, "task": self.task, "seeds": self.seeds, "seed": self.seed,
                "grid": self.grid, "fixed": dict(self.fixed), "description": self.description}

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "spec") -> SweepSpec:
        """Validate a parsed spec table: unknown or missing keys are named with the allowed ones."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{source} must be a table; got {type(data).__name__}")
        unknown = [k for k in data if k not in SPEC_KEYS]
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; allowed keys are {list(SPEC_KEYS)}")
        missing = [k for k in ("name", "task", "grid") if k not in data]
        if missing:
            raise ValueError(f"{source}: missing required key(s) {missing}; a spec needs name, task and grid "
                             f"(allowed keys {list(SPEC_KEYS)})")
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{source}: {err}") from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a TOML sweep spec (see the module docstring for the format)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"spec {str(path)!r} is a directory; give the path of a TOML spec file inside it "
                         f"(e.g. {str(path / 'grid.toml')!r})")
    if not path.is_file():
        raise FileNotFoundError(f"spec file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"spec {str(path)!r} is not a UTF-8 text file; give a TOML sweep spec") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    return SweepSpec.from_dict(data, source=str(path))
