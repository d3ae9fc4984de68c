"""Ablation of learn_approx's slack tolerance (issue 11, defect 3): math.inf, g = ε/(32T²) (the old
default), ε/T (a quarter of the per-step TV budget) and 2λ (the default, see ``default_slack_tol``)
on approximately-low-rank models.

Prints, per model and tolerance, TV to the truth (median and [min, max] over seeds), accepted runs,
dropped epochs and the largest chain slack seen. Run: ``.venv/bin/python benchmarks/ablate_slack_tol.py``.
"""

from __future__ import annotations

import math
import statistics
import warnings

import torch

from logitrank.algorithms import ApproxNotAcceptedWarning, default_threshold, learn_approx
from logitrank.synth import all_sequences, approx_rank_error, perturbed, power_law_isan, random_isan
from logitrank.verify import tv_distance

EPS = 0.1
LEARNER = {"n_validation": 16, "n_spanner": 32, "epochs": 6}  # B1's quick learner
SEEDS = (0, 1, 2)


def models(seed: int):
    yield "perturbed V3 T5 d3 ξ=1e-4", perturbed(random_isan(3, 5, 3, generator=seed), 1e-4, generator=seed), 3
    yield "perturbed V3 T5 d3 ξ=1e-3", perturbed(random_isan(3, 5, 3, generator=seed), 1e-3, generator=seed), 3
    yield "perturbed V3 T5 d3 ξ=1e-2", perturbed(random_isan(3, 5, 3, generator=seed), 1e-2, generator=seed), 3
    yield "perturbed V2 T6 d2 ξ=1e-3", perturbed(random_isan(2, 6, 2, generator=seed), 1e-3, generator=seed), 2
    yield "power law V2 T5 D4 α1, r2", power_law_isan(2, 5, 4, 1.0, generator=seed), 2


def main() -> None:
    torch.set_num_threads(1)
    rows = {}
    for seed in SEEDS:
        for label, model, rank in models(seed):
            truth = model.log_prob(all_sequences(model.vocab_size, model.horizon)).exp()
            eps_avg = float(approx_rank_error(model, rank, generator=seed).max())
            T = model.horizon
            for name, tol in (("inf", math.inf), ("g", default_threshold(EPS, T)), ("ε/T", EPS / T), ("2λ (default)", None)):
                kw = {} if tol is None else {"slack_tol": tol}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ApproxNotAcceptedWarning)
                    learned, rep = learn_approx(model, rank=rank, epsilon=EPS, generator=seed, **LEARNER, **kw)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tv = tv_distance(truth, learned.distribution())
                slack = max((x for x in rep.max_slacks if not math.isnan(x)), default=float("nan"))
                rows.setdefault((label, name), []).append((tv, rep.accepted, len(rep.dropped_epochs), slack, eps_avg))
    print(f"ε = {EPS}, learner {LEARNER}, seeds {SEEDS}")
    print(f"{'model':<28} {'slack_tol':<14} {'ε_avg med':>9} {'TV median':>10} {'TV min':>9} {'TV max':>9} {'accepted':>8} "
          f"{'dropped':>7} {'max slack':>9}")
    for (label, name), rs in rows.items():
        tvs = [r[0] for r in rs]
        print(f"{label:<28} {name:<14} {statistics.median(r[4] for r in rs):>9.2e} {statistics.median(tvs):>10.2e} "
              f"{min(tvs):>9.2e} {max(tvs):>9.2e} {sum(r[1] for r in rs):>5}/{len(rs)} {sum(r[2] for r in rs):>7} "
              f"{max(r[3] for r in rs):>9.2e}")


if __name__ == "__main__":
    main()
