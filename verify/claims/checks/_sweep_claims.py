"""X1 (paper B, open problem 1): how the achievable TV depends on d at fixed ε_avg — a sweep on the engine.

Paper B's guarantee for the approximate-rank learner grows polynomially in d; its first open
problem asks for error guarantees without that dependence. X1 measures it: random dim-d ISANs
perturbed until their sampled ε_avg at rank d (:func:`logitrank.synth.approx_rank_error`, max over
levels) equals a fixed target (family ``eps_avg_isan`` of :mod:`logitrank.verify.experiments.sweep`), learned by
:func:`logitrank.algorithms.learn_approx` at rank d with its default parameters; TV to the oracle
by exact enumeration. Only accepted samplers are judged (issue 31): a d-cell whose run was not
accepted by the learner's certificate is reported but left out of the fit, and a seed with fewer than
:data:`MIN_ACCEPTED_CELLS` accepted cells is not judged (its reason gives the counts). The rows live
in the sweep store (``<out_dir>/logitrank.sqlite``, sweep ``X1-<scale>``), so a rerun reads finished
cells instead of recomputing them; the shipped spec ``examples/x1_tv_vs_d.toml`` is the quick grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..._presets import Presets
from ...experiments.sweep import SweepSpec, load, plot_sweep, run_sweep
from .._check_api import CheckConfig, ClaimResult, register
from ._completeness_claims import NOT_JUDGED, combine_judged

#: the largest exponent k in TV/ε_avg ∝ d^k read as "no polynomial dependence on d" (fixed before any run)
MAX_EXPONENT = 0.5
#: accepted d-cells a seed needs to be judged: a line through two points has no residual to judge it by
MIN_ACCEPTED_CELLS = 3
#: X1: the ISANs' vocabulary V and horizon T, the grid of d, and the target ε_avg
X1_GRID = Presets({
    "quick": {"V": 3, "T": 5, "d": [2, 3, 4, 6], "eps_avg": 0.05},
    "full": {"V": 3, "T": 6, "d": [2, 3, 4, 6, 8], "eps_avg": 0.05},
})
X1_RULE = (f"per seed: fit log(TV/ε_avg) = k·log d + c over the d-cells whose learn_approx run was accepted (TV of "
           f"learn_approx at rank d, defaults, on dim-d ISANs perturbed to ε_avg = 0.05 at rank d, ε_avg re-measured "
           f"per cell; a cell not accepted is reported, never judged); the seed holds if k <= {MAX_EXPONENT} (TV per "
           f"unit ε_avg grows slower than √d), fails otherwise, and is not judged (mixed) with fewer than "
           f"{MIN_ACCEPTED_CELLS} accepted cells; across seeds: holds if every seed holds, fails if every seed "
           "fails, mixed otherwise")


def x1_spec(scale: str, seed: int, settings: Mapping | None = None) -> SweepSpec:
    """The X1 sweep at ``scale`` for base seed ``seed`` (one seed per check call; the registry runs several).

    ``settings`` are X1's resolved settings (the check passes ``config.preset(X1_GRID)``); by default
    the preset ``scale`` of :data:`X1_GRID` as written."""
    g = X1_GRID[scale] if settings is None else settings
    return SweepSpec(
        name=f"X1-{scale}", task="learn", seeds=1, seed=seed, grid={"d": g["d"]},
        fixed={"family": "eps_avg_isan", "V": g["V"], "T": g["T"], "eps_avg": g["eps_avg"], "learner": "approx",
               "epsilon": 0.1},
        description="X1: achievable TV vs d at fixed eps_avg (paper B, open problem 1)",
    )


def exponent(d, ratio) -> float:
    """k of the least-squares fit log(ratio) = k·log(d) + c.

    Examples
    --------
    >>> round(exponent([2, 4, 8], [1.0, 2.0, 4.0]), 6)
    1.0
    """
    return float(np.polyfit(np.log(np.asarray(d, dtype=float)), np.log(np.asarray(ratio, dtype=float)), 1)[0])


def x1_verdict(d, tv, eps_avg) -> tuple[str, float]:
    """The rule of :data:`X1_RULE` for one seed: ("holds" | "fails", k)."""
    k = exponent(d, np.asarray(tv, dtype=float) / np.asarray(eps_avg, dtype=float))
    return ("holds" if k <= MAX_EXPONENT else "fails"), k


def x1_judged(rows) -> tuple[str, float, str]:
    """The rule of :data:`X1_RULE` on one seed's d-cells (a DataFrame with d, tv, eps_avg_measured, accepted)
    → (verdict, k, reason): the fit over accepted cells only; "mixed" (not judged) with too few of them."""
    accepted = rows[rows["accepted"] == 1]
    counts = f"{len(accepted)}/{len(rows)} d-cells accepted"
    if len(accepted) < MIN_ACCEPTED_CELLS:
        return "mixed", float("nan"), (f"{NOT_JUDGED}: {counts} (d = {[int(d) for d in accepted['d']]}; "
                                       f"needs {MIN_ACCEPTED_CELLS}); unaccepted samplers are never judged")
    verdict, k = x1_verdict(accepted["d"], accepted["tv"], accepted["eps_avg_measured"])
    if verdict == "holds":
        return verdict, k, counts
    return verdict, k, f"TV/ε_avg grows like d^{k:.2f} (> d^{MAX_EXPONENT}) at fixed ε_avg ({counts})"


def _x1_figure(everything, spec: SweepSpec, out_dir):
    """TV against d of every stored seed's accepted runs (all runs, so titled, when none was accepted)."""
    done = everything[everything["status"] == "done"]
    accepted = done[done["accepted"] == 1]
    what = f"accepted runs only ({len(accepted)} of {len(done)} stored)" if len(accepted) else \
        f"no run accepted: all {len(done)} shown, none judged"
    return plot_sweep(accepted if len(accepted) else done, x="d", y="tv", out_dir=out_dir, name="X1_tv_vs_d",
                      title=f"X1: TV vs d at ε_avg={spec.fixed['eps_avg']}, {what}")


@register("X1", seeded=True, rule=X1_RULE, presets=X1_GRID, combine=combine_judged)
def check_x1(config: CheckConfig) -> ClaimResult:
    """Achievable TV of the approximate learner vs d at fixed ε_avg, on accepted samplers only; holds when
    TV/ε_avg grows slower than √d."""
    settings = config.preset(X1_GRID)
    spec = x1_spec(config.scale, config.seed, settings)
    store = Path(config.out_dir) / "logitrank.sqlite"
    run = run_sweep(spec, store=store)
    everything = load(store, spec.name, current=False)  # every seed stored so far (for the figure)
    rows = load(store, spec).sort_values("d")  # this seed's cells
    setting = {"model": f"eps_avg_isan V={spec.fixed['V']} T={spec.fixed['T']}", "d": settings["d"],
               "eps_avg target": spec.fixed["eps_avg"], "learner": "learn_approx(rank=d, epsilon=0.1), defaults",
               "judged": f"accepted d-cells only (at least {MIN_ACCEPTED_CELLS} per seed)",
               "store": str(store), "sweep": spec.name, "cached cells": run.cached}
    failed = rows[rows["status"] != "done"]
    if len(failed):
        return ClaimResult("X1", "error", setting=setting, reason=f"{len(failed)} cell(s) failed: {failed['error'].iloc[0]}")
    verdict, k, reason = x1_judged(rows)
    fig = _x1_figure(everything, spec, config.figure_dir)
    accepted = rows[rows["accepted"] == 1]
    return ClaimResult(
        "X1", verdict, setting=setting, headline="exponent k of TV/eps_avg in d",
        figures={
            "exponent k of TV/eps_avg in d": k if math.isnan(k) else round(k, 3),
            "accepted d-cells": int(rows["accepted"].sum()), "d-cells": len(rows),
            "TV at smallest accepted d": float(accepted["tv"].iloc[0]) if len(accepted) else float("nan"),
            "TV at largest accepted d": float(accepted["tv"].iloc[-1]) if len(accepted) else float("nan"),
            "max |eps_avg/target - 1|": float((rows["eps_avg_measured"] / spec.fixed["eps_avg"] - 1).abs().max()),
            "accepted runs": f"{int(rows['accepted'].sum())}/{len(rows)}",
            "per d": [{"d": int(r.d), "TV": float(r.tv), "eps_avg": float(r.eps_avg_measured), "queries": int(r.queries),
                       "accepted": bool(r.accepted), "judged": bool(r.accepted), "witnesses": int(r.witnesses)}
                      for r in rows.itertuples()],
            "figure": str(fig[0]),
        },
        reason=reason,
    )
