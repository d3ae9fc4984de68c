"""Paper B's learner, round 2: the measurements behind its four changes, each in one table.

1. **Widening.** For oracles whose every logit is off by at most ξ (``perturbed``: errors exactly ±ξ),
   TV(truth, oracle) over length-T paths by exact enumeration, the max over several models, against
   the new bound (``oracle_widening``, "kl") and the old 1 − e^{−2Tξ} ("log_ratio"): covers yes/no and
   the looseness ratio bound / measured. A bound must cover in every row (it is a proof, not a fit).
2. **Soundness.** The issue's reproduction (random_isan(3, 5, 8, generator=5, scale=2.0), rank 2,
   ε = 0.1, g = 10) under every acceptance rule and both ``until`` modes: accepted iff bound <= ε.
3. **Completeness.** >= 100 independent runs (fresh model seed, learning stream and certificate
   stream per run; default K and settings), ε ∈ {0.05, 0.1, 0.2}: the acceptance rate in bins of the
   returned sampler's exact TV/ε, with the round-2 n_cert and with the old one on the same runs,
   the false accepts (accepted with TV > ε), and the certificate's per-epoch power (every certified
   epoch, its exact TV from ``on_epoch``).
4. **Anytime.** A 6-dimensional ISAN whose dynamics are a rank-3 block plus leakage g = 0.05 into 3
   more dimensions (V = 3, T = 6, rank 3, ε = 0.1, K = 50), several seeds: queries, samples, epochs
   and exact TV for ``until="accept"``, ``until="budget"`` (patience 3, and patience None = the whole
   budget), and the non-stopping reference — the same patience-None run's last epoch (the same
   draws, hence the same queries).

Run: ``.venv/bin/python benchmarks/measure_learner_round2.py [--quick] [--runs N] [--seeds N]``
(one thread; about 8 minutes on a shared 2-core machine, ``--quick`` about 4).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch

from logitrank.algorithms import _certificate as certificate
from logitrank.algorithms import default_n_cert, learn_approx, oracle_widening
from logitrank.synth import TimeVaryingISAN, all_sequences, perturbed, power_law_isan, random_isan

XIS = (1e-3, 1e-2, 0.05, 0.1, 0.3, 1.0)
HORIZONS = (1, 2, 3, 5, 8)
#: (V, readout scale): near-uniform truths are the worst case of the bound's proof (two-point steps)
WIDENING_MODELS = ((2, 0.01), (2, 1.0), (3, 0.01), (3, 1.0), (4, 1.0))
BINS = (("[0, 0.5]", 0.0, 0.5), ("(0.5, 0.7]", 0.5, 0.7), ("(0.7, 1]", 0.7, 1.0), ("> 1", 1.0, math.inf),
        ("gray (0.5, 1]", 0.5, 1.0))


def exact_tv(p_probs: torch.Tensor, q_model) -> float:
    """½‖P − Q‖₁ over Σ^T, P given as its (V**T,) probabilities."""
    return 0.5 * float((p_probs - q_model.distribution()).abs().sum())


def probs(model) -> torch.Tensor:
    return model.log_prob(all_sequences(model.vocab_size, model.horizon)).exp()


def recorder(P: torch.Tensor, out: list, with_cert: bool):
    """An ``on_epoch`` callback appending each epoch's exact TV (and its certificate) to ``out``."""
    def record(epoch, sampler, cert):
        out.append((exact_tv(P, sampler), cert) if with_cert else exact_tv(P, sampler))
    return record


def quiet(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not-accepted and uniform-fallback warnings: counted in the tables
        return learn_approx(model, **kwargs)


# -- 1. widening ---------------------------------------------------------------------------------------


def table_widening(quick: bool) -> None:
    print("\n1. Noisy-oracle widening: TV(truth, oracle) for per-entry logit error xi, exact enumeration,")
    print(f"   max over {len(WIDENING_MODELS) * (1 if quick else 2)} models per row (V, scale) = {WIDENING_MODELS}"
          f"{'' if quick else ' x 2 seeds'} (V = 4 only for T <= 5)")
    print(f"{'xi':>6} {'T':>2} {'new bound':>10} {'old bound':>10} {'measured':>10} {'covers new':>10} "
          f"{'covers old':>10} {'new/meas':>8} {'old/meas':>8}  worst model")
    all_cover = True
    for T in HORIZONS:
        truths = [(V, sc, seed, random_isan(V, T, 2, generator=seed, scale=sc)) for V, sc in WIDENING_MODELS
                  for seed in ((1,) if quick else (1, 2)) if V**T <= 7000]
        truth_probs = [probs(m) for *_, m in truths]
        for xi in XIS:
            tvs = [0.5 * float((P - probs(perturbed(m, xi, generator=seed + 2))).abs().sum())
                   for (V, sc, seed, m), P in zip(truths, truth_probs)]
            k = max(range(len(tvs)), key=tvs.__getitem__)
            new, old, meas = oracle_widening(xi, T), oracle_widening(xi, T, "log_ratio"), tvs[k]
            all_cover &= new >= meas
            V, sc, seed, _ = truths[k]
            print(f"{xi:6g} {T:2d} {new:10.4g} {old:10.4g} {meas:10.4g} {'yes' if new >= meas else 'NO':>10} "
                  f"{'yes' if old >= meas else 'NO':>10} {new / meas:8.2f} {old / meas:8.2f}  V={V} scale={sc} seed={seed}",
                  flush=True)
    print(f"   new bound covers every row: {'yes' if all_cover else 'NO'}")


# -- 2. soundness ----------------------------------------------------------------------------------------


def table_soundness() -> None:
    print("\n2. Soundness: the issue's reproduction, random_isan(3, 5, 8, generator=5, scale=2.0), rank 2, eps 0.1, g = 10")
    model = random_isan(3, 5, 8, generator=5, scale=2.0)
    P = probs(model)
    print(f"{'acceptance':>12} {'until':>7} {'accepted':>8} {'by':>12} {'tv_bound':>9} {'exact TV':>9} "
          f"{'validation passed (epochs)':>27}")
    for acceptance in ("certificate", "validation", "either"):
        for until in ("accept", "budget"):
            learned, rep = quiet(model, rank=2, epsilon=0.1, threshold=10.0, acceptance=acceptance, until=until, generator=0)
            passed = sum(bool(v) for v in rep.validation_passed)
            print(f"{acceptance:>12} {until:>7} {rep.accepted!s:>8} {rep.accepted_by or '-':>12} {rep.tv_bound:9.4f} "
                  f"{exact_tv(P, learned):9.4f} {passed:>14} of {rep.epochs:<3}", flush=True)


# -- 3. completeness -------------------------------------------------------------------------------------


def old_n_cert(epsilon: float, epochs: int, delta: float) -> int:
    """The sizing before round 2: 2·ln(K/δ)/kl(ε/4 ‖ ε)."""
    return max(2, math.ceil(2.0 * math.log(epochs / delta) / certificate._kl_bernoulli(epsilon / 4, epsilon)))


def completeness_model(i: int):
    """Run i's model and ε: perturbed rank-3 ISANs (3 in 4) and power-law ISANs (1 in 4), V = 3, T = 5."""
    g = torch.Generator().manual_seed(1000 + i)
    eps = (0.05, 0.1, 0.2)[i % 3]
    if i % 4 == 3:
        alpha = float(torch.empty(1).uniform_(1.0, 2.5, generator=g))
        return power_law_isan(3, 5, 8, alpha, generator=5000 + i), eps, f"power law a={alpha:.2f}"
    xi = float(torch.empty(1).uniform_(0.0, 0.3, generator=g))
    return perturbed(random_isan(3, 5, 3, generator=5000 + i), xi, generator=7000 + i), eps, f"perturbed xi={xi:.3f}"


def run_completeness(runs: int) -> tuple[list, list]:
    rows, epochs = [], []
    for i in range(runs):
        model, eps, name = completeness_model(i)
        P = probs(model)
        per_epoch = []
        kw = {"rank": 3, "epsilon": eps, "generator": 9000 + i, "cert_generator": 11000 + i}
        learned, rep = quiet(model, on_epoch=recorder(P, per_epoch, True), **kw)
        K = rep.max_epochs
        old_learned, old_rep = quiet(model, n_cert=old_n_cert(eps, K, 0.05), **kw)
        rows.append({"i": i, "model": name, "eps": eps, "tv": exact_tv(P, learned), "accepted": rep.accepted,
                     "bound": rep.tv_bound, "n_cert": rep.n_cert, "old_tv": exact_tv(P, old_learned),
                     "old_accepted": old_rep.accepted, "old_n_cert": old_rep.n_cert, "epochs": rep.epochs})
        epochs += [(tv / eps, cert.bound <= eps) for tv, cert in per_epoch if cert is not None]
    return rows, epochs


def _bin_line(label: str, lo: float, hi: float, pairs: list) -> str:
    inside = [ok for r, ok in pairs if lo < r <= hi or (lo == 0.0 and r == 0.0)]
    rate = f"{sum(inside) / len(inside):6.1%}" if inside else "     -"
    return f"{sum(inside):4d}/{len(inside):<4d} {rate}"


def table_completeness(runs: int) -> None:
    start = time.perf_counter()
    rows, epochs = run_completeness(runs)
    print(f"\n3. Completeness: {runs} independent runs (model, learning and certificate streams fresh per run), V = 3,"
          " T = 5, rank 3, eps in {0.05, 0.1, 0.2},")
    print("   default K = T*rank + 1 = 16 and delta = 0.05; n_cert round 2 (sized for TV = 0.7 eps at power 0.9) "
          f"= {sorted({r['n_cert'] for r in rows})}, old = {sorted({r['old_n_cert'] for r in rows})}")
    print(f"{'TV/eps of the returned sampler':>30} {'round 2: accepted':>20} {'old n_cert: accepted':>22}")
    for label, lo, hi in BINS:
        new = [(r["tv"] / r["eps"], r["accepted"]) for r in rows]
        old = [(r["old_tv"] / r["eps"], r["old_accepted"]) for r in rows]
        print(f"{label:>30} {_bin_line(label, lo, hi, new):>20} {_bin_line(label, lo, hi, old):>22}")
    false_new = sum(r["accepted"] and r["tv"] > r["eps"] for r in rows)
    false_old = sum(r["old_accepted"] and r["old_tv"] > r["eps"] for r in rows)
    unsound = sum(r["accepted"] and r["bound"] > r["eps"] for r in rows)
    print(f"   false accepts (accepted with exact TV > eps): round 2 {false_new}/{runs}, old n_cert {false_old}/{runs}; "
          f"accepted with tv_bound > eps: {unsound}")
    print(f"   per certified epoch (round 2 n_cert; {len(epochs)} epochs): fraction with bound <= eps, by TV/eps")
    for label, lo, hi in BINS:
        print(f"{label:>30} {_bin_line(label, lo, hi, epochs):>20}")
    print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)


# -- 4. anytime ---------------------------------------------------------------------------------------------


def _haar(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    G = torch.randn(n, d, d, generator=gen, dtype=torch.float64)
    Q, R = torch.linalg.qr(G)
    signs = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    signs[signs == 0] = 1.0
    return Q * signs.unsqueeze(-2)  # (n, d, d) Haar orthogonal


def leaking_block_isan(V: int, T: int, block: int, extra: int, leak: float, seed: int) -> TimeVaryingISAN:
    """A (block + extra)-dimensional ISAN: orthogonal dynamics on the first ``block`` coordinates (a rank-
    ``block`` model on its own), which leak ``leak``·G (G Gaussian, 1/√block scaled) into ``extra`` more
    coordinates with their own orthogonal dynamics; x0 in the block, readouts B ~ N(0, 1) on all of them.

    A[s, z] = [[Q, 0], [leak·G, R]] — so the logits are those of a rank-``block`` ISAN plus a part of order
    leak·s that the rank-``block`` learner cannot represent."""
    gen = torch.Generator().manual_seed(seed)
    d = block + extra
    A = torch.zeros(T, V, d, d, dtype=torch.float64)
    A[:, :, :block, :block] = _haar(T * V, block, gen).reshape(T, V, block, block)
    A[:, :, block:, block:] = _haar(T * V, extra, gen).reshape(T, V, extra, extra)
    A[:, :, block:, :block] = leak * torch.randn(T, V, extra, block, generator=gen, dtype=torch.float64) / math.sqrt(block)
    B = torch.randn(T, V, d, generator=gen, dtype=torch.float64)
    x0 = torch.zeros(d, dtype=torch.float64)
    u = torch.randn(block, generator=gen, dtype=torch.float64)
    x0[:block] = u / u.norm()
    return TimeVaryingISAN(A, B, x0)


def table_anytime(seeds: int, K: int) -> None:
    start = time.perf_counter()
    print(f"\n4. Anytime: leaking block (V = 3, T = 6, rank-3 block + leak 0.05 into 3 more dims), rank 3, eps 0.1, K = {K}")
    print(f"{'seed':>4} {'run':>34} {'accepted':>8} {'epochs':>6} {'returned':>8} {'queries':>7} {'samples':>8} "
          f"{'tv_bound':>8} {'exact TV':>8}")
    ratios = []
    for seed in range(seeds):
        model = leaking_block_isan(3, 6, 3, 3, 0.05, seed)
        P = probs(model)
        kw = {"rank": 3, "epsilon": 0.1, "epochs": K, "generator": seed}
        variants = [("until=accept (old n_cert)", {"n_cert": old_n_cert(0.1, K, 0.05)}), ("until=accept", {}),
                    ("until=budget", {"until": "budget"}), ("until=budget, patience=None", {"until": "budget", "patience": None})]
        for name, extra in variants:
            per_epoch = []
            learned, rep = quiet(model, on_epoch=recorder(P, per_epoch, False), **kw, **extra)
            tv = exact_tv(P, learned)
            print(f"{seed:4d} {name:>34} {rep.accepted!s:>8} {rep.epochs:6d} {rep.returned_epoch:8d} {rep.queries:7d} "
                  f"{rep.samples:8d} {rep.tv_bound:8.4f} {tv:8.4f}", flush=True)
        # the non-stopping reference: the last patience-None run, all K epochs, returning its last epoch
        print(f"{seed:4d} {'non-stopping reference (last epoch)':>34} {'-':>8} {rep.epochs:6d} {rep.epochs:8d} "
              f"{rep.queries:7d} {rep.samples:8d} {'-':>8} {per_epoch[-1]:8.4f}   (best epoch in hindsight: "
              f"{min(per_epoch):.4f})")
        ratios.append(tv / per_epoch[-1])
    print(f"   until=budget (whole budget) TV / non-stopping TV at equal queries: "
          f"{', '.join(f'{r:.2f}' for r in ratios)} (target <= 1.5); ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer widening models, 100 runs, 3 anytime seeds")
    ap.add_argument("--runs", type=int, default=None, help="completeness runs (default 120; --quick 100)")
    ap.add_argument("--seeds", type=int, default=None, help="anytime seeds (default 5; --quick 3)")
    ap.add_argument("--budget-epochs", type=int, default=50, help="K of the anytime table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    print("n_cert sizing check (exact Bernoulli power at TV = 0.7 eps, level 0.05/K): "
          + ", ".join(f"eps={e:g} K={k}: n={default_n_cert(e, k, 0.05)} power="
                      f"{certificate.certificate_power(default_n_cert(e, k, 0.05), 0.7 * e, e, 0.05 / k):.3f}"
                      for e, k in ((0.05, 16), (0.1, 16), (0.2, 16), (0.1, 50))))
    table_widening(args.quick)
    table_soundness()
    table_completeness(args.runs or (100 if args.quick else 120))
    table_anytime(args.seeds or (3 if args.quick else 5), args.budget_epochs)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
