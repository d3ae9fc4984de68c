"""Issue 21: how the approximate learner's acceptance and witness rules behave where paper B applies.

Runs :func:`logitrank.algorithms.learn_approx` on approximately low-rank models (random ISANs with a
high-rank perturbation of size ξ, and power-law ISANs learned below their rank) under several
settings, each measured in the same run, and prints per variant: the fraction accepted, the exact
TV of what came back (by enumeration), how often an accepted sampler had TV > ε (must be 0), how
often a sampler with TV ≤ ε/2 was accepted, epochs, distinct queries and seconds.

Variants (the first is the restatement as it was before issue 21):

* ``restatement`` — per-entry validation accepts, every gap above g is a witness, all K epochs.
* ``cert-only`` — the certificate accepts; witnesses as the restatement (no floor, no cap, no patience).
* ``cert+floor``, ``cert+cap``, ``default`` (floor, cap, patience 3), ``default+per_level``.
* ``mean-validation`` — the validation accepts on the mean gap instead of the largest.

Then the three certificate bounds (kl, bernstein, min) on the x's of the default variant's returned
samplers: the bound each gives at the same n, and its ratio to the exact TV.

Run: ``.venv/bin/python benchmarks/bench_certificate.py [--seeds 3] [--json out.json]``; with
``--grid-cells`` it times the theorist grid's slowest approximate cells before and after instead.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch

from logitrank.algorithms import learn_approx, tv_certificate, tv_statistic
from logitrank.synth import all_sequences, perturbed, power_law_isan, random_isan

EPS = 0.1
VARIANTS = {
    "restatement": {"acceptance": "validation", "witness_cap": "none", "noise_floor": False, "patience": None},
    "cert-only": {"acceptance": "certificate", "witness_cap": "none", "noise_floor": False, "patience": None},
    "cert+floor": {"acceptance": "certificate", "witness_cap": "none", "noise_floor": True, "patience": None},
    "cert+cap": {"acceptance": "certificate", "witness_cap": "rank", "noise_floor": False, "patience": None},
    "cert+floor+cap": {"acceptance": "certificate", "witness_cap": "rank", "noise_floor": True, "patience": None},
    "floor+patience": {"witness_cap": "none", "witnesses_per_epoch": "one"},
    "floor+cap+patience": {"witness_cap": "rank", "witnesses_per_epoch": "one"},
    "default": {},
    "default+cap": {"witness_cap": "rank"},
    "mean-validation": {"acceptance": "validation", "validation_statistic": "mean"},
}


def models(seed: int):
    """(name, model, rank): the approximate regime of paper B at V = 3, T = 5."""
    base = random_isan(3, 5, 3, generator=100 + seed)
    yield "exact rank", base, 3
    for xi in (1e-3, 1e-2, 5e-2, 0.2):
        yield f"perturbed xi={xi:g}", perturbed(base, xi, generator=100 + seed), 3
    for alpha in (2.0, 1.0):
        yield f"power law a={alpha:g} r=3", power_law_isan(3, 5, 8, alpha, generator=200 + seed), 3
    yield "far: rank 1", perturbed(base, 1e-2, generator=100 + seed), 1


def exact_tv(model, learned) -> float:
    seqs = all_sequences(model.vocab_size, model.horizon)
    P = model.log_prob(seqs).exp()
    return 0.5 * float((P - learned.distribution()).abs().sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--json", default=None)
    ap.add_argument("--grid-cells", action="store_true",
                    help="only time the theorist grid's slowest approximate cells, restatement vs default")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.grid_cells:
        grid_cells()
        return
    rows = []
    for seed in range(args.seeds):
        for name, model, rank in models(seed):
            for variant in args.variants:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    learned, rep = learn_approx(model, rank=rank, epsilon=EPS, generator=seed, **VARIANTS[variant])
                seconds = time.perf_counter() - start
                row = {"seed": seed, "model": name, "rank": rank, "variant": variant, "accepted": rep.accepted,
                       "by": rep.accepted_by, "tv": exact_tv(model, learned), "bound": rep.tv_bound,
                       "epochs": rep.epochs, "K": rep.max_epochs, "witnesses": sum(rep.witnesses),
                       "queries": rep.queries, "seconds": seconds}
                if variant == "default":
                    gen = torch.Generator().manual_seed(10_000 + seed)
                    y = model.sample(rep.n_cert, generator=gen)
                    x = tv_statistic(model.log_prob(y), learned.log_prob(y))
                    delta = 0.05 / rep.max_epochs
                    row["bounds"] = {m: tv_certificate(x, delta=delta, method=m).bound for m in ("kl", "bernstein", "min")}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\nvariant              accepted  TV>eps accepted  accepted|TV<=eps/2  median TV  epochs  queries  seconds")
    for variant in args.variants:
        rs = [r for r in rows if r["variant"] == variant]
        acc = [r for r in rs if r["accepted"]]
        good = [r for r in rs if r["tv"] <= EPS / 2]
        tvs = sorted(r["tv"] for r in rs)
        print(f"{variant:20} {len(acc):3}/{len(rs):<4} {sum(r['tv'] > EPS for r in acc):6}          "
              f"{sum(r['accepted'] for r in good):3}/{len(good):<3}            {tvs[len(tvs) // 2]:9.2e}  "
              f"{sum(r['epochs'] for r in rs) / len(rs):6.1f}  {sum(r['queries'] for r in rs) / len(rs):7.0f}  "
              f"{sum(r['seconds'] for r in rs):7.1f}")
    with_b = [r for r in rows if "bounds" in r]
    if with_b:
        print("\ncertificate bound at the same n (default variant's samplers): median bound, and bound - TV")
        for m in ("kl", "bernstein", "min"):
            b = sorted(r["bounds"][m] for r in with_b)
            slack = sorted(r["bounds"][m] - r["tv"] for r in with_b)
            print(f"  {m:10} median bound {b[len(b) // 2]:.4f}   median bound-TV {slack[len(slack) // 2]:.4f}   "
                  f"certifies eps: {sum(x <= EPS for x in b)}/{len(b)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


def grid_cells() -> None:
    """Per-cell time of the approximate learner on examples/theorist_grid.toml's slowest cells (ξ = 1e-3),
    before (the restatement's rules) and after (the defaults), in the same run, with exact/Monte Carlo TV."""
    from logitrank.verify.experiments.sweep import sub_seed

    print("cell (V, T, d), xi=1e-3, seed 0     variant       seconds  accepted  epochs")
    for V, T, d in ((8, 8, 8), (4, 8, 8), (8, 4, 8), (2, 8, 8)):
        base = random_isan(V, T, d, generator=sub_seed(0, 1))
        oracle = perturbed(base, 1e-3, generator=sub_seed(0, 2))
        for variant in ("restatement", "default"):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, rep = learn_approx(oracle, rank=d, epsilon=EPS, generator=sub_seed(0, 4), **VARIANTS[variant])
            print(f"({V}, {T}, {d})                         {variant:12} {time.perf_counter() - start:8.1f}  "
                  f"{rep.accepted!s:8}  {rep.epochs}/{rep.max_epochs}", flush=True)


if __name__ == "__main__":
    main()
