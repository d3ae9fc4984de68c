"""B6: completeness of the approximate learner's certificate — acceptance against the model's ε_avg (issue 31).

Paper B's guarantee for its learner: when the model's ε_avg at rank d is small enough for ε, the
learner returns, with probability >= 1 − δ, a sampler within TV ε. With the held-out certificate of
:func:`logitrank.algorithms.learn_approx` (accept only when the certified bound is <= ε) soundness is
claim B5; B6 measures completeness against the *model*, not against the returned TV: over families
whose ε_avg is known by construction (``eps_avg_isan``: random dim-d ISANs perturbed until their
sampled ε_avg at rank d hits a target; power-law ISANs at several rank budgets), each run a fresh
model draw with its own learning and certificate streams, the acceptance probability as a function
of ε_avg/ε, where it holds (ε_avg <= c·ε, c = :data:`C_RATIO`) and where it falls off.

The rule (:data:`RULE`) was written into this module before B6 was run for the first time; the
constant c was stated from earlier measurements (issue 21's table: TV ≈ ε_avg to 3·ε_avg on perturbed
ISANs at V = 3; the certificate's power is ≈ 1 at TV <= 0.6·ε with the round-2 ``n_cert``).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from logitrank.algorithms import ApproxNotAcceptedWarning, learn_approx
from logitrank.synth import all_sequences, approx_rank_error, power_law_isan

from ..._presets import Presets
from ...experiments.sweep import build_model
from ...figures._approx import plot_completeness
from .._check_api import CheckConfig, ClaimResult, register

__all__ = ["C_RATIO", "MIN_RUNS", "NOT_JUDGED", "RULE", "clopper_pearson", "combine_judged", "completeness_rows",
           "judge_completeness"]

#: the constant c of the rule: runs with ε_avg <= c·ε must be accepted with probability >= 1 − δ
C_RATIO = 0.1
#: runs with ε_avg <= c·ε a seed needs before it is judged
MIN_RUNS = 20
#: confidence of the one-sided Clopper–Pearson bound (the rule's binomial slack)
CONFIDENCE = 0.95
#: bins of ε_avg/ε for the acceptance curve (the last is open)
RATIO_EDGES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, math.inf)

RULE = (f"per seed: learn_approx (defaults, rank d, target ε, failure probability δ) on families with known "
        f"ε_avg — eps_avg_isan (dim-d ISANs perturbed to ε_avg/ε from 0.01 to 1 at rank d) and power-law ISANs "
        f"at several rank budgets — every run a fresh model draw with its own learning and certificate streams "
        f"(cert_generator); ε_avg = the sampled approx_rank_error at the learner's rank (max over levels, its own "
        f"probe). Among the n runs with ε_avg <= c·ε, c = {C_RATIO:g}, k accepted: the seed holds when "
        f"n >= {MIN_RUNS} and the one-sided {CONFIDENCE:.0%} Clopper–Pearson upper bound on the acceptance "
        f"probability from k of n is >= 1 − δ (the runs do not show acceptance below 1 − δ at {CONFIDENCE:.0%} "
        f"confidence); fails when that bound is < 1 − δ; not judged (mixed) when n < {MIN_RUNS}. Runs with "
        f"ε_avg > c·ε (the acceptance curve against ε_avg/ε, where it falls below 1 − δ) and the gray zone "
        f"(returned TV in (ε/2, ε]) are reported as their own rows, not judged. Across seeds: holds if every "
        f"seed holds, fails if every seed fails, mixed otherwise")

#: B6: (V, T) and d of eps_avg_isan, its ε_avg/ε targets; the power-law model (D, α) and rank budgets;
#: targets ε; the learner's δ; runs (fresh model draws) per cell
_B6 = Presets({
    "quick": {"VT": (3, 4), "d": 2, "ratios": (0.01, 0.03, 0.07, 0.2, 0.5, 1.0), "power_law": (6, 2.0),
              "power_ranks": (3, 4, 5), "epsilons": (0.1,), "delta": 0.05, "runs": 8},
    "full": {"VT": (3, 5), "d": 3, "ratios": (0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0),
             "power_law": (6, 2.0), "power_ranks": (2, 3, 4, 5), "epsilons": (0.05, 0.1, 0.2), "delta": 0.05,
             "runs": 16},
})


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """One-sided Clopper–Pearson bounds (lower, upper) on a binomial probability from k successes of n.

    Each is one-sided at ``confidence``: P(p < lower) <= 1 − confidence, and likewise for upper.

    Examples
    --------
    >>> [round(x, 4) for x in clopper_pearson(20, 20)]
    [0.8609, 1.0]
    >>> round(clopper_pearson(18, 20)[1], 4)
    0.9819
    """
    from scipy.stats import beta

    if not 0 <= k <= n or n < 1:
        raise ValueError(f"k must lie in [0, n] with n >= 1; got k={k}, n={n}")
    alpha = 1.0 - confidence
    lower = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    upper = 1.0 if k == n else float(beta.ppf(confidence, k + 1, n - k))
    return lower, upper


#: how the reason of a seed that was not judged starts (its verdict is "mixed")
NOT_JUDGED = "not judged"


def combine_judged(results) -> tuple[str, str]:
    """The registry's default rule across seeds (holds only if every seed holds, fails only if every seed
    fails, mixed otherwise), with seeds that were *not judged* (verdict "mixed", reason starting
    :data:`NOT_JUDGED`) counted as neither and named as such in the reason."""
    verdicts = [r.verdict for r in results]
    for bad in ("error", "not-run"):
        if bad in verdicts:
            first = next(r for r in results if r.verdict == bad)
            return bad, f"{verdicts.count(bad)} of {len(results)} seeds {bad}: {(first.reason or '').partition(chr(10))[0]}"
    if all(v == "holds" for v in verdicts):
        return "holds", ""
    skipped = [r for r in results if r.verdict == "mixed" and r.reason.startswith(NOT_JUDGED)]
    n_hold, n_fail = verdicts.count("holds"), verdicts.count("fails")
    notes = "; ".join(f"seed {r.setting.get('seed', i)}: {r.reason.splitlines()[0]}"
                      for i, r in enumerate(results) if r.verdict != "holds" and r.reason)
    if n_fail == len(results):
        return "fails", f"fails in every seed ({notes})"
    head = (f"not judged at any of {len(results)} seeds" if len(skipped) == len(results) else
            f"{n_hold} of {len(results)} seeds hold, {n_fail} fail, {len(skipped)} not judged")
    return "mixed", f"{head} ({notes})"


def _seeds(*key: int) -> tuple[int, int, int, int]:
    """Independent seeds (model, learner, certificate, ε_avg probe) for one run, from its key."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(4, dtype=np.uint64)
    return tuple(int(s >> 1) for s in state)


def _cells(spec: dict):
    """(family index, label, rank, target ε_avg/ε or None, model builder(seed, ε)) per cell of the grid."""
    V, T = spec["VT"]
    d = spec["d"]
    for i, ratio in enumerate(spec["ratios"]):
        def build(seed, eps, ratio=ratio):
            cfg = {"family": "eps_avg_isan", "V": V, "T": T, "d": d, "eps_avg": ratio * eps, "model_seed": seed}
            return build_model(cfg, seed)[0]
        yield (0, i), f"eps_avg_isan d={d}", d, ratio, build
    D, alpha = spec["power_law"]
    for r in spec["power_ranks"]:
        yield (1, r), f"power law D={D} α={alpha:g}", r, None, (lambda seed, eps: power_law_isan(V, T, D, alpha, generator=seed))


def _exact_tv(model, learned) -> float:
    P = model.log_prob(all_sequences(model.vocab_size, model.horizon)).exp()
    return 0.5 * float((P - learned.distribution()).abs().sum())


def _run(build, rank: int, eps: float, delta: float, seeds: tuple) -> dict:
    """One run: a fresh model, its ε_avg at ``rank`` on its own probe, the learner with its own two streams."""
    model_seed, learn_seed, cert_seed, probe_seed = seeds
    model = build(model_seed, eps)
    eps_avg = float(approx_rank_error(model, rank, generator=probe_seed).max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApproxNotAcceptedWarning)  # a rejection is a row here
        learned, rep = learn_approx(model, rank=rank, epsilon=eps, delta=delta, generator=learn_seed,
                                    cert_generator=cert_seed)
    return {"eps_avg": eps_avg, "ratio": eps_avg / eps, "accepted": rep.accepted, "TV": _exact_tv(model, learned),
            "bound": rep.tv_bound, "epochs": rep.epochs, "queries": rep.queries, "model seed": model_seed,
            "cert seed": rep.cert_seed}


def completeness_rows(spec: dict, seed: int) -> list[dict]:
    """One row per run: family, rank, ε, target ratio, measured ε_avg and ε_avg/ε, accepted, exact TV, bound."""
    rows = []
    for k, eps in enumerate(spec["epsilons"]):
        for key, label, rank, target, build in _cells(spec):
            for run in range(spec["runs"]):
                row = _run(build, rank, eps, spec["delta"], _seeds(seed, k, *key, run))
                rows.append({"family": label, "rank": rank, "epsilon": eps, "target ratio": target, "run": run, **row})
    return rows


def _rate(rows: list[dict]) -> dict:
    k, n = sum(bool(r["accepted"]) for r in rows), len(rows)
    lo, hi = clopper_pearson(k, n) if n else (math.nan, math.nan)
    return {"runs": n, "accepted": k, "rate": k / n if n else math.nan, "CP lower": lo, "CP upper": hi}


def acceptance_bins(rows: list[dict]) -> list[dict]:
    """Acceptance per bin of ε_avg/ε (:data:`RATIO_EDGES`), with one-sided Clopper–Pearson bounds."""
    out = []
    for lo, hi in itertools.pairwise(RATIO_EDGES):
        inside = [r for r in rows if lo < r["ratio"] <= hi or (lo == 0.0 and r["ratio"] == 0.0)]
        if inside:
            out.append({"ε_avg/ε": f"({lo:g}, {hi:g}]", "low": lo, "high": hi,
                        "median ε_avg/ε": float(np.median([r["ratio"] for r in inside])),
                        "median TV/ε": float(np.median([r["TV"] / r["epsilon"] for r in inside])), **_rate(inside)})
    return out


def judge_completeness(rows: list[dict], delta: float) -> tuple[str, str, dict]:
    """The rule of :data:`RULE` for one seed's runs → (verdict, reason, figures)."""
    region = [r for r in rows if r["ratio"] <= C_RATIO]
    gray = [r for r in rows if r["epsilon"] / 2 < r["TV"] <= r["epsilon"]]
    judged, gray_rate, beyond = _rate(region), _rate(gray), _rate([r for r in rows if r["ratio"] > C_RATIO])
    bins = acceptance_bins(rows)
    falls = next((b["low"] for b in bins if b["rate"] < 1 - delta), math.nan)
    figures = {f"acceptance where ε_avg ≤ {C_RATIO:g}ε": judged["rate"], "runs where ε_avg ≤ cε": judged["runs"],
               "accepted where ε_avg ≤ cε": judged["accepted"], "CP upper bound where ε_avg ≤ cε": judged["CP upper"],
               "acceptance where ε_avg > cε": beyond["rate"], "runs where ε_avg > cε": beyond["runs"],
               "acceptance in the gray zone (TV in (ε/2, ε])": gray_rate["rate"], "gray-zone runs": gray_rate["runs"],
               "acceptance first below 1 − δ above ε_avg/ε": falls,
               "accepted with TV > ε": sum(1 for r in rows if r["accepted"] and r["TV"] > r["epsilon"]),
               "rows": [{"ε_avg/ε": f"≤ {C_RATIO:g} (judged)", **judged}, *bins,
                        {"ε_avg/ε": "gray zone: returned TV in (ε/2, ε] (not judged)", **gray_rate}]}
    counts = f"{judged['accepted']}/{judged['runs']} accepted where ε_avg ≤ {C_RATIO:g}ε"
    if judged["runs"] < MIN_RUNS:
        return "mixed", f"{NOT_JUDGED}: {judged['runs']} runs with ε_avg ≤ {C_RATIO:g}ε (< {MIN_RUNS})", figures
    if judged["CP upper"] < 1 - delta:
        return "fails", (f"{counts}: the {CONFIDENCE:.0%} Clopper–Pearson upper bound {judged['CP upper']:.3f} "
                         f"is below 1 − δ = {1 - delta:g}"), figures
    return "holds", counts, figures


@register("B6", seeded=True, rule=RULE, presets=_B6, combine=combine_judged)
def check_b6(config: CheckConfig) -> ClaimResult:
    """Completeness: acceptance of learn_approx's certificate against ε_avg/ε over independent model draws.

    Rule fixed before measuring (:data:`RULE`): at every seed, runs with ε_avg <= 0.1·ε must not show an
    acceptance probability below 1 − δ (one-sided 95% Clopper–Pearson), with at least 20 such runs.
    """
    spec = config.preset(_B6)
    rows = completeness_rows(spec, config.seed)
    verdict, reason, figures = judge_completeness(rows, spec["delta"])
    bins = [row for row in figures["rows"] if "low" in row]
    paths = plot_completeness(rows, bins, config.figure_dir, c=C_RATIO, delta=spec["delta"])
    V, T = spec["VT"]
    return ClaimResult(
        "B6", verdict,
        setting={"(V, T)": spec["VT"], f"eps_avg_isan d={spec['d']}, ε_avg/ε targets": spec["ratios"],
                 "power law (D, α)": spec["power_law"], "power-law rank budgets": spec["power_ranks"],
                 "targets ε": spec["epsilons"], "δ": spec["delta"], "runs per cell (fresh model draws)": spec["runs"],
                 "c": C_RATIO, "learner": "learn_approx defaults (certificate, until='accept'), cert_generator per run",
                 "ε_avg": f"approx_rank_error at the learner's rank, max over {T} levels (V = {V})"},
        figures={**figures, "runs": rows, "figure": str(paths[0])},
        reason=reason, headline=f"acceptance where ε_avg ≤ {C_RATIO:g}ε",
    )
