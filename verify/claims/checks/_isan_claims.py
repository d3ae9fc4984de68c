"""Checks of the ISAN structure theorems: T1 (Fact C.4) and T3 (Fact C.2) of paper A."""

from __future__ import annotations

import torch

from logitrank.algorithms import generic_level_rank, level_ranks
from logitrank.synth import random_isan

from ..._metrics import tv_distance
from ..._presets import Presets
from .._check_api import CheckConfig, ClaimResult, register

#: T1 and T3 (shared): the (V, T, d) grid and how many random ISANs are drawn per size;
#: quick runs in about a second, full in under a minute.
_ISAN = Presets({
    "quick": {"sizes": [(2, 6, 3), (3, 5, 4), (4, 4, 3), (2, 8, 5)], "draws": 3},
    "full": {"sizes": [(2, 10, 6), (3, 7, 8), (4, 6, 10), (5, 5, 6), (2, 12, 16)], "draws": 10},
}, minimums={"draws": 1, "sizes": 1}, min_items={"sizes": 1})


def _models(spec: dict, seed: int):
    for V, T, d in spec["sizes"]:
        for k in range(spec["draws"]):
            model_seed = seed * 1000 + k
            yield (V, T, d, model_seed), random_isan(V, T, d, generator=model_seed)


@register("T1", presets=_ISAN, rule="holds when every level of every model has numerical rank <= d AND equals the generic rank "
                      "min(d, V^t, V^(T−t) − 1) (random_isan draws are generic with probability 1)")
def check_t1(config: CheckConfig) -> ClaimResult:
    """rank L(Σ^t, Σ^{<T−t}) ≤ d at every level t, and = min(d, V^t, V^(T−t) − 1) for generic draws.

    Both parts decide the verdict: the bound of Fact C.4 alone is met by any function that
    under-reports rank (a rank of 0 everywhere passes it), so the equality with the generic rank,
    which a random ISAN attains with probability 1, is required at every level too.
    """
    spec = config.preset(_ISAN)
    worst_excess, generic_hits, total, rows = None, 0, 0, []
    for (V, T, d, seed), model in _models(spec, config.seed):
        ranks = level_ranks(model)
        generic = [generic_level_rank(V, T, d, t) for t in range(T)]
        excess = max(r - d for r in ranks)
        worst_excess = excess if worst_excess is None else max(worst_excess, excess)
        generic_hits += int(ranks == generic)
        total += 1
        rows.append({"V": V, "T": T, "d": d, "seed": seed, "ranks": ranks, "generic": generic})
    bound_ok, generic_ok = worst_excess <= 0, generic_hits == total
    holds = bound_ok and generic_ok
    reasons = ([] if bound_ok else [f"some level matrix has numerical rank above d (by {worst_excess})"]) + (
        [] if generic_ok else [f"only {generic_hits}/{total} models reach the generic rank at every level"])
    return ClaimResult(
        "T1",
        "holds" if holds else "fails",
        setting={"models": len(rows), "sizes (V,T,d)": spec["sizes"], "rank tol": "eps·max(m,n)·σ_max, float64"},
        figures={
            "max(rank − d)": worst_excess,
            "generic rank at every level": f"{generic_hits}/{total}",
            "per model": rows,
        },
        reason="; ".join(reasons),
        headline="generic rank at every level",
    )


@register("T3", presets=_ISAN)
def check_t3(config: CheckConfig) -> ClaimResult:
    """The time-invariant ISAN of dim T·d has the same distribution (exact TV over Σ^T)."""
    worst, worst_tol, rows = 0.0, 0.0, []
    ok = True
    for (V, T, d, _), model in _models(config.preset(_ISAN), config.seed):
        if V**T > 2**16:
            continue
        ti = model.to_time_invariant()
        tv = tv_distance(model.distribution(), ti.distribution())
        # Each probability is a product of T softmax factors, each with relative error of a few eps,
        # so the TV of two exact-arithmetic-equal models is below ~10·T·eps; 100·T·eps leaves room.
        tol = 100 * T * torch.finfo(torch.float64).eps
        ok &= tv <= tol
        worst = max(worst, tv)
        worst_tol = max(worst_tol, tol)
        rows.append({"V": V, "T": T, "d": d, "hidden dim": ti.hidden_dim, "TV": tv})
    return ClaimResult(
        "T3",
        "holds" if ok else "fails",
        setting={"models": len(rows), "dtype": "float64", "TV tolerance": "100·T·eps"},
        figures={"max TV": worst, "tolerance": worst_tol, "per model": rows},
        reason="" if ok else "a time-invariant ISAN differs from its time-varying source beyond rounding",
    )
