"""B5: the approximate learner's held-out TV certificate on a regime map (issue 21).

The learner (:func:`logitrank.algorithms.learn_approx`, default ``acceptance="certificate"``) accepts
an epoch when an upper confidence bound on TV(P, Q) from fresh paths is at most ε. This check runs it
over a map of approximately low-rank models (random ISANs of rank 3 with a high-rank perturbation
ξ, and power-law ISANs) × rank budgets × targets ε, ``runs`` independent runs per cell, and compares
every decision with the exact TV of what came back (enumerated over Σ^T).

Every run is an independent draw (issue 31): its own model (a fresh model seed, so the N runs of a
cell are N model draws, and no two cells share a model), its own learning stream and its own
certificate stream (``cert_generator``), all derived from (seed, cell, run) by
:class:`numpy.random.SeedSequence`. Before, one model seed per replicate served every cell and the
certificate's stream was derived from the learner's seed, so 648 runs were 72 model draws.
"""

from __future__ import annotations

import warnings

import numpy as np

from logitrank.algorithms import ApproxNotAcceptedWarning, learn_approx
from logitrank.synth import all_sequences, approx_rank_error, perturbed, power_law_isan, random_isan

from ..._presets import Presets
from ...figures._approx import plot_regime_map
from .._check_api import CheckConfig, ClaimResult, register

#: B5: (V, T), perturbations ξ of a rank-3 ISAN, power-law exponents, rank budgets, targets ε, runs per cell
_B5 = Presets({
    "quick": {"VT": (3, 4), "xi": (1e-3, 1e-2, 5e-2, 0.2), "alpha": (2.0, 0.5), "ranks": (1, 2, 3),
              "epsilons": (0.05, 0.1, 0.2), "runs": 12},
    "full": {"VT": (3, 5), "xi": (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3), "alpha": (2.0, 1.0, 0.5), "ranks": (1, 2, 3, 4),
             "epsilons": (0.05, 0.1, 0.2), "runs": 4},
})
MIN_ACCEPTED = 200  # accepted runs needed before "never accepts TV > ε" is judged
POWER = 0.9  # fraction of cells with returned TV ≤ ε/2 that must be accepted

_RULE = (f"pooled over all seeds: holds when at least {MIN_ACCEPTED} runs were accepted, none of them with exact "
         f"TV > ε, and at least {POWER:.0%} of the runs whose returned TV ≤ ε/2 were accepted; fails when an "
         f"accepted run has TV > ε or the acceptance rate there is below {POWER:.0%}; 'inconclusive' (mixed) "
         f"when fewer than {MIN_ACCEPTED} runs were accepted")


def _models(V: int, T: int, spec: dict):
    """(label, builder(model seed) → a fresh model) per model family of the map."""
    for xi in spec["xi"]:
        yield f"perturbed ξ={xi:g}", lambda seed, xi=xi: perturbed(random_isan(V, T, 3, generator=seed), xi,
                                                                     generator=seed + 1)
    for alpha in spec["alpha"]:
        yield f"power law α={alpha:g}", lambda seed, alpha=alpha: power_law_isan(V, T, 8, alpha, generator=seed)


def run_seeds(*key: int) -> tuple[int, int, int, int]:
    """Independent seeds (model, learner, certificate, ε_avg probe) of one run, from (seed, cell, run).

    Examples
    --------
    >>> a, b = run_seeds(0, 1, 2, 3), run_seeds(0, 1, 2, 4)
    >>> len(set(a) | set(b))
    8
    """
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(4, dtype=np.uint64)
    return tuple(int(s >> 2) for s in state)


def _exact_tv(model, learned) -> float:
    P = model.log_prob(all_sequences(model.vocab_size, model.horizon)).exp()
    return 0.5 * float((P - learned.distribution()).abs().sum())


def _learn_quietly(model, rank: int, eps: float, seed: int, cert_seed: int):
    """``learn_approx`` at (rank, ε) with its not-accepted warning silenced (a rejection is a row here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApproxNotAcceptedWarning)
        return learn_approx(model, rank=rank, epsilon=eps, generator=seed, cert_generator=cert_seed)


def regime_rows(spec: dict, seed: int) -> list[dict]:
    """One row per (model, rank, ε, run), each an independent model draw with its own learning and
    certificate streams (:func:`run_seeds`): accepted, by which rule, exact TV, certified bound, queries,
    seconds, and the run's model and certificate seeds."""
    V, T = spec["VT"]
    rows = []
    for m, (label, build) in enumerate(_models(V, T, spec)):
        for rank in spec["ranks"]:
            for k, eps in enumerate(spec["epsilons"]):
                for run in range(spec["runs"]):
                    model_seed, learn_seed, cert_seed, probe_seed = run_seeds(seed, m, rank, k, run)
                    model = build(model_seed)
                    learned, rep = _learn_quietly(model, rank, eps, learn_seed, cert_seed)
                    rows.append({"model": label, "rank": rank, "epsilon": eps, "run": run,
                                 "eps_avg": float(approx_rank_error(model, rank, generator=probe_seed).max()),
                                 "accepted": rep.accepted, "by": rep.accepted_by, "TV": _exact_tv(model, learned),
                                 "bound": rep.tv_bound, "epochs": rep.epochs, "queries": rep.queries,
                                 "cert queries": rep.cert_queries, "seconds": rep.seconds, "model seed": model_seed,
                                 "cert seed": rep.cert_seed})
    return rows


def judge(rows: list[dict]) -> tuple[str, str, dict]:
    """The rule of :data:`_RULE` → (verdict, reason, figures)."""
    accepted = [r for r in rows if r["accepted"]]
    wrong = [r for r in accepted if r["TV"] > r["epsilon"]]
    easy = [r for r in rows if r["TV"] <= r["epsilon"] / 2]
    power = sum(r["accepted"] for r in easy) / len(easy) if easy else float("nan")
    figures = {"runs": len(rows), "accepted runs": len(accepted), "accepted with TV > ε": len(wrong),
               "runs with TV ≤ ε/2": len(easy), "accepted | TV ≤ ε/2": power,
               "max TV/ε, accepted": max((r["TV"] / r["epsilon"] for r in accepted), default=float("nan")),
               "max bound/TV, accepted": max((r["bound"] / max(r["TV"], 1e-300) for r in accepted), default=float("nan"))}
    if wrong:
        return "fails", f"{len(wrong)} accepted run(s) with TV > ε (worst TV/ε {figures['max TV/ε, accepted']:.3g})", figures
    if easy and power < POWER:
        return "fails", f"accepted {power:.1%} of the runs with TV ≤ ε/2 (< {POWER:.0%})", figures
    if len(accepted) < MIN_ACCEPTED:
        return "mixed", f"inconclusive: {len(accepted)} accepted runs (< {MIN_ACCEPTED})", figures
    return "holds", "", figures


@register("B5", seeded=False, rule=_RULE, presets=_B5)
def check_b5(config: CheckConfig) -> ClaimResult:
    """The regime map of the certificate: soundness (never TV > ε when accepted) and power (TV ≤ ε/2 accepted).

    Verdict rule fixed before measuring (issue 21): see :data:`_RULE`. Not seeded by the registry:
    the rule is about rates over many runs, so each cell runs ``runs`` independent runs (a fresh model
    draw, learning stream and certificate stream each, derived from ``config.seed``), all pooled.
    """
    spec = config.preset(_B5)
    rows = regime_rows(spec, config.seed)
    verdict, reason, figures = judge(rows)
    paths = plot_regime_map(rows, config.figure_dir)
    return ClaimResult(
        "B5", verdict,
        setting={"(V, T)": spec["VT"], "perturbations ξ (rank-3 ISAN)": spec["xi"], "power-law α (D = 8)": spec["alpha"],
                 "rank budgets": spec["ranks"], "targets ε": spec["epsilons"], "runs per cell": spec["runs"],
                 "learner": "learn_approx defaults (acceptance='certificate')",
                 "runs": "independent: a fresh model draw, learning stream and certificate stream (cert_generator) each"},
        figures={**figures, "model draws": len({(r["model"], r["model seed"]) for r in rows}), "rows": rows,
                 "figure": str(paths[0])},
        reason=reason, headline="accepted | TV ≤ ε/2",
    )
