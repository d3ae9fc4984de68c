"""What a claim check is: its settings (:class:`CheckConfig`), its result (:class:`ClaimResult`) and the
table of registered checks (:func:`register`).

The check modules of :mod:`logitrank.verify.claims.checks` import only this module; the registry
(:mod:`logitrank.verify.claims._registry`), which loads and runs them, imports them. So the import graph
reads checks → claim API ← registry, with no circle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from .._presets import Presets, _freeze
from ._ledger import LEDGER, Claim

__all__ = [
    "DEFAULT_SEEDS",
    "DTYPES",
    "SCALES",
    "VERDICTS",
    "CheckConfig",
    "ClaimResult",
    "Verdict",
    "register",
    "unregister",
]

Verdict = Literal["holds", "fails", "mixed", "not-run", "error"]
VERDICTS = ("holds", "fails", "mixed", "not-run", "error")
SCALES = ("quick", "full")
#: weights' dtypes a real-model check may run in (CheckConfig.dtype)
DTYPES = ("float32", "bfloat16")
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
    dtype : the weights' dtype of the real-model checks' language model, "float32" (default) or
        "bfloat16" (issue 32: the ledger at N ≥ 256 runs in bfloat16 under E1's dtype rule; head, Gram
        and fits stay float32/float64). Comparison models (tiny checkpoints) stay float32.
    overrides : mapping or tuple of (key, value) pairs
        Settings that replace those of the check's preset (``logitrank check E1 --set n=256``); a
        key the check does not have is refused before it runs. Stored frozen (lists as tuples).
    """

    scale: str = "quick"
    seed: int = 0
    out_dir: str = "results"
    model: str = "tiny"
    seeds: int | None = None
    overrides: tuple = ()
    dtype: str = "float32"

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
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES} (the real-model checks' weights); got {self.dtype!r}")
        items = self.overrides.items() if isinstance(self.overrides, Mapping) else self.overrides
        try:
            pairs = tuple(sorted((str(k), _freeze(v)) for k, v in items))
        except (TypeError, ValueError):
            raise ValueError(f"overrides must be a mapping of setting → value; got {self.overrides!r}") from None
        object.__setattr__(self, "overrides", pairs)

    def preset(self, presets: Presets | Mapping, name: str | None = None) -> dict:
        """The check's settings: the preset ``name`` (default the table's choice for this run,
        :meth:`Presets.name_for`: its scale unless the table picks otherwise) with :attr:`overrides`
        applied (see :class:`logitrank.verify._presets.Presets`); recorded with the result."""
        if not isinstance(presets, Presets):
            presets = Presets(presets)
        return presets.resolve(presets.name_for(self) if name is None else name, dict(self.overrides))

    @property
    def n_seeds(self) -> int:
        """Seeds a seeded check runs."""
        return DEFAULT_SEEDS[self.scale] if self.seeds is None else self.seeds

    @property
    def figure_dir(self) -> Path:
        """``<out_dir>/figures/<model>/<scale>/seed<seed>``: runs of different identity never share figures."""
        model = re.sub(r"[^A-Za-z0-9_.@-]+", "_", self.model).strip("._") or "model"
        if self.dtype != "float32":
            model += f"-{self.dtype}"
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
    config : what ran: {"preset": scale, "overrides": {...}, "resolved": every setting the check read}
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
    config: dict = field(default_factory=dict)

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
    presets: Presets | None = None


_CHECKS: dict[str, _Entry] = {}
_USER_CLAIMS: set[str] = set()
_USER_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def register(claim_id: str, *, seeded: bool = False, rule: str = "",
             combine: CombineFn | None = None, statement: str | None = None,
             source: str = "user", presets: Presets | Mapping | None = None) -> Callable[[CheckFn], CheckFn]:
    """Decorator: make ``fn(config) -> ClaimResult`` the check of ledger claim ``claim_id``.

    ``seeded=True`` runs the check once per seed and combines the results (module docstring);
    ``rule`` states the verdict rule in words; ``combine(results) -> (verdict, reason)`` replaces
    the default rule across seeds. ``presets`` are the check's settings per scale (a
    :class:`~logitrank.verify._presets.Presets` or its table), which the check reads with
    ``config.preset(...)``: declaring them lets ``--set`` be validated and ``--show-config`` print them.

    A claim of your own: pass an ID that is not in the ledger with its ``statement`` (and
    ``source``); it joins the ledger (after the built-in claims) in this process, and ``logitrank
    check`` runs it when the module holding it is loaded — with ``--plugin MODULE`` (a module name
    or a ``.py`` file) or from an installed package's entry point in the group
    :data:`ENTRY_POINT_GROUP` (``[project.entry-points."logitrank.claims"] mine = "mypkg.claims"``).

    >>> from logitrank.verify import run_check
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

    table = presets if presets is None or isinstance(presets, Presets) else Presets(presets)

    def decorate(fn: CheckFn) -> CheckFn:
        if not callable(fn):
            raise TypeError(f"the check of {claim_id} must be callable (config -> ClaimResult); got {fn!r}")
        if claim_id in _CHECKS and _CHECKS[claim_id].fn is not fn:
            raise ValueError(f"claim {claim_id} already has a check ({_CHECKS[claim_id].fn.__qualname__})")
        _CHECKS[claim_id] = _Entry(fn, seeded, rule, combine, table)
        return fn

    return decorate


def unregister(claim_id: str) -> None:
    """Remove a claim of your own (its check and ledger row); built-in claims cannot be removed."""
    if claim_id not in _USER_CLAIMS:
        raise ValueError(f"claim {claim_id!r} is not a user-registered claim; user claims: {sorted(_USER_CLAIMS)}")
    _USER_CLAIMS.discard(claim_id)
    _CHECKS.pop(claim_id, None)
    LEDGER.pop(claim_id, None)


