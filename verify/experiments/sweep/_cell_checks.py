"""Checks of one cell's configuration against its built-in task, run on every cell before any cell runs.

Each check raises ``TypeError`` (wrong type) or ``ValueError`` (value out of range) naming the key,
the value received and what is expected; :func:`logitrank.verify.experiments.sweep.run_sweep` adds the cell.
Sizes are refused up front when the cell's model alone would need more than a quarter of this
machine's memory (:data:`MEMORY_FRACTION`): such a cell would never finish, and finding out
after the other cells ran wastes the sweep.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

from logitrank._validation import available_bytes, check_int, check_real

__all__ = ["APPROX_KEYS", "approx_settings", "check_family", "check_learn", "check_logit_ranks", "check_spectrum",
           "rank_tol_for"]

#: families and their default parameters (a cell's missing keys take these)
FAMILIES = {
    "random_isan": {"V": 2, "T": 4, "d": 2},
    "power_law_isan": {"V": 4, "T": 4, "d": 4, "alpha": 1.0},
    "perturbed_isan": {"V": 2, "T": 4, "d": 2, "perturbation": 1e-3},
    "eps_avg_isan": {"V": 3, "T": 5, "d": 2, "eps_avg": 0.05},
    "noisy_parity": {"n": 4, "noise": 0.1},
    "copying": {"n": 3, "strength": 8.0},
    "ssm": {"V": 2, "T": 4, "state_dim": 2, "input_dim": 2, "output_dim": 2},
}
MODEL_KEYS = {"family", "xi", "model_seed"}
#: largest share of physical memory one cell's model (or the spectrum task's matrix) may need
MEMORY_FRACTION = 0.25
#: ``rank_tol = "auto"``: the exact learner's tolerance is max(RANK_TOL_FLOOR, RANK_TOL_PER_XI · ξ)
RANK_TOL_FLOOR = 1e-8
RANK_TOL_PER_XI = 10.0

#: keys of a ``learn`` cell passed to :class:`~logitrank.algorithms.ApproxSettings` (``learner = "approx"``)
APPROX_KEYS = ("beta", "threshold", "epochs", "n_validation", "n_spanner", "acceptance", "n_cert", "cert_bound",
               "witness_cap", "noise_floor", "patience", "witnesses_per_epoch", "validation_statistic", "delta",
               "oracle_error", "widening", "until", "max_queries")
#: integer settings among :data:`APPROX_KEYS` (a cell's value must already be an integer)
_APPROX_INTS = ("epochs", "n_validation", "n_spanner", "n_cert", "patience", "max_queries")
#: ``oracle_error = "xi"``: the certificate is told the cell's own oracle noise ξ (``perturbed`` errs by
#: exactly ±ξ per logit), so it bounds TV to the truth
ORACLE_ERROR_XI = "xi"
LEARN_KEYS = {"learner", "epsilon", "rank", "max_rank", "rank_tol", "tv_to", "tv_half_width", "measure_tv",
              *APPROX_KEYS}


def _keys(task: str, config: Mapping, allowed: set) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"task {task!r}: unknown config key(s) {unknown}; allowed keys are {sorted(allowed)}")


def _choice(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{key} must be one of {list(allowed)}; got {value!r}")


def _bool(key: str, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false; got {value!r} of type {type(value).__name__}")


def family_of(config: Mapping) -> str:
    family = config.get("family", "random_isan")
    _choice("family", family, sorted(FAMILIES))
    return family


def _model_numbers(family: str, p: Mapping) -> int:
    """About how many float64 numbers building the family's model takes (draws included)."""
    if family in ("noisy_parity", "copying"):
        n = p["n"]
        return 8 * (n + 1) * (n + 2) if family == "copying" else 16 * (n + 1)
    if family == "ssm":
        d, q, r = p["state_dim"], p["input_dim"], p["output_dim"]
        return p["V"] * (d * d + d * q + q) + q * (d + r + p["V"]) + d
    return 3 * p["T"] * p["V"] * p["d"] ** 2


def _check_bytes(what: str, nbytes: int, fix: str) -> None:
    limit = MEMORY_FRACTION * available_bytes(None)
    if nbytes > limit:
        raise ValueError(f"{what} needs about {nbytes / 2**30:.3g} GiB, more than {MEMORY_FRACTION:.0%} of this "
                         f"machine's {available_bytes(None) / 2**30:.3g} GiB; {fix}")


def check_family(config: Mapping) -> dict:
    """The cell's model parameters (defaults filled in), each checked; ``xi`` and ``model_seed`` too."""
    family = family_of(config)
    p = {k: config.get(k, v) for k, v in FAMILIES[family].items()}
    if family in ("noisy_parity", "copying"):
        check_int("n", p["n"], minimum=1)
    else:
        check_int("V", p["V"], minimum=2)
        check_int("T", p["T"], minimum=1)
    if "d" in p:
        check_int("d", p["d"], minimum=2 if family == "power_law_isan" else 1)
        if family == "power_law_isan" and p["d"] % 2:
            raise ValueError(f"d must be even for family 'power_law_isan' (planar rotation blocks); got {p['d']}")
    if family == "ssm":
        for k in ("state_dim", "input_dim", "output_dim"):
            check_int(k, p[k], minimum=1)
    for key, kw in (("alpha", {"low": 0.0, "low_open": True}), ("perturbation", {"low": 0.0}),
                    ("eps_avg", {"low": 0.0, "low_open": True}), ("noise", {"low": 0.0, "high": 0.5, "low_open": True,
                                                                           "high_open": True}),
                    ("strength", {"low": 0.0, "low_open": True})):
        if key in p:
            check_real(key, p[key], **kw)
    check_real("xi", config.get("xi", 0.0), low=0.0)
    if "model_seed" in config:
        check_int("model_seed", config["model_seed"], minimum=0)
    sizes = ", ".join(f"{k}={v}" for k, v in p.items() if isinstance(v, int))
    _check_bytes(f"the {family} model ({sizes})", 8 * _model_numbers(family, p), "use smaller sizes")
    return p


def rank_tol_for(config: Mapping) -> float:
    """The exact learner's ``rank_tol``: the cell's number, or for ``"auto"`` max(1e-8, 10·ξ).

    ``"auto"`` follows X3's measured rule: with ``rank_tol`` (relative to each level's largest
    singular value) about ten times the oracle's per-logit noise ξ, the learner keeps the true
    dimension instead of learning the noise (``RankExceededError`` at 1e-8 for ξ >= 1e-6).

    Examples
    --------
    >>> rank_tol_for({"xi": 1e-3, "rank_tol": "auto"}), rank_tol_for({"xi": 0.0, "rank_tol": "auto"})
    (0.01, 1e-08)
    """
    tol = config.get("rank_tol", RANK_TOL_FLOOR)
    if tol == "auto":
        return max(RANK_TOL_FLOOR, RANK_TOL_PER_XI * float(config.get("xi", 0.0)))
    return float(tol)


def check_learn(config: Mapping) -> None:
    """Every key of a ``learn`` cell: the family's, the learner's (``ApproxSettings`` for "approx")."""
    family = family_of(config)
    _keys("learn", config, LEARN_KEYS | MODEL_KEYS | set(FAMILIES[family]))
    p = check_family(config)
    learner = config.get("learner", "exact")
    _choice("learner", learner, ["exact", "approx"])
    _choice("tv_to", config.get("tv_to", "truth"), ["truth", "oracle"])
    epsilon = check_real("epsilon", config.get("epsilon", 0.1), low=0.0, high=1.0, low_open=True, high_open=True)
    if "measure_tv" in config:
        _bool("measure_tv", config["measure_tv"])
    if "tv_half_width" in config:
        check_real("tv_half_width", config["tv_half_width"], low=0.0, high=0.5, low_open=True, high_open=True)
    if "rank_tol" in config and config["rank_tol"] != "auto":
        if isinstance(config["rank_tol"], str):
            raise ValueError(f"rank_tol must be a number in (0, 1) or \"auto\" (max(1e-8, 10·xi)); "
                             f"got {config['rank_tol']!r}")
        check_real("rank_tol", config["rank_tol"], low=0.0, high=1.0, low_open=True, high_open=True)
    if "max_rank" in config:
        check_int("max_rank", config["max_rank"], minimum=1)
    if "rank" in config:
        check_int("rank", config["rank"], minimum=1)
    kwargs = approx_settings(config)
    if learner == "approx" or kwargs:  # the exact learner ignores them (a grid over both may share them); valid still
        from logitrank.algorithms import ApproxSettings

        for k, v in kwargs.items():  # ApproxSettings coerces some types; a cell's value must already be right
            if k in _APPROX_INTS and v is not None and not isinstance(v, numbers.Integral):
                check_int(k, v)
        ApproxSettings(rank=check_int("rank", config.get("rank", p.get("d", 2)), minimum=1), epsilon=epsilon, **kwargs)


def approx_settings(config: Mapping) -> dict:
    """The :class:`~logitrank.algorithms.ApproxSettings` keywords of a ``learn`` cell (``oracle_error = "xi"``
    resolved to the cell's ξ), unvalidated beyond that.

    Examples
    --------
    >>> approx_settings({"xi": 0.01, "oracle_error": "xi", "delta": 0.1, "V": 3})
    {'delta': 0.1, 'oracle_error': 0.01}
    """
    kwargs = {k: config[k] for k in APPROX_KEYS if k in config}
    xi_ = kwargs.get("oracle_error")
    if isinstance(xi_, str):
        if xi_ != ORACLE_ERROR_XI:
            raise ValueError(f"oracle_error must be a number >= 0 (the oracle's largest per-logit error) or "
                             f"{ORACLE_ERROR_XI!r} (the cell's xi); got {xi_!r}")
        kwargs["oracle_error"] = config.get("xi", 0.0)
    return kwargs


def _vt(family: str, p: Mapping) -> tuple[int, int]:
    if family == "noisy_parity":
        return 2, p["n"] + 1
    if family == "copying":
        return 2, 2 * p["n"]
    return p["V"], p["T"]


def _check_level(V: int, T: int, t: int) -> None:
    """The limits of :func:`logitrank.algorithms.level_logit_matrix` (its defaults), checked before any work."""
    import inspect

    from logitrank.algorithms import level_logit_matrix

    defaults = inspect.signature(level_logit_matrix).parameters
    max_rows, max_cols = defaults["max_rows"].default, defaults["max_cols"].default
    rows, cols = V ** min(t, 64), V * (V ** min(T - t, 64) - 1) // (V - 1)  # capped: 2^64 is past any limit
    if rows > max_rows or cols > max_cols:
        raise ValueError(f"level {t} of a V={V}, T={T} model has {rows} histories and {cols} columns, above the "
                         f"limits of level_logit_matrix ({max_rows} rows, {max_cols} columns); use a smaller V or T")


def check_spectrum(config: Mapping) -> None:
    family = family_of(config)
    _keys("spectrum", config, {"level", "r"} | MODEL_KEYS | set(FAMILIES[family]))
    V, T = _vt(family, check_family(config))
    t = check_int("level", config["level"], minimum=0, maximum=T - 1) if "level" in config else T // 2
    if "r" in config:
        check_int("r", config["r"], minimum=1)
    _check_level(V, T, t)


def check_logit_ranks(config: Mapping) -> None:
    family = family_of(config)
    _keys("logit_ranks", config, MODEL_KEYS | set(FAMILIES[family]))
    V, T = _vt(family, check_family(config))
    for t in (0, T - 1):  # the widest and the tallest level
        _check_level(V, T, t)
