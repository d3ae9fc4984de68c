"""Sensitivity of the approximate-rank learner to β, the threshold g and the epoch budget K.

Paper B's summaries suggest these ablations (vary β and the threshold across orders of magnitude and
watch |F̂|, failures and cost). :func:`sensitivity_study` varies one parameter at a time around a base
setting, learns, and records TV (exact enumeration), distinct queries, witnesses, the LP infeasibility
rate and acceptance; it writes one figure per parameter. Run it from the command line with

    python -m logitrank.verify._sensitivity --out results/figures [--seed 0]

or at full scale through ``logitrank check B1 --scale full``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence

import torch

from logitrank.algorithms import learn_approx
from logitrank.synth import LanguageModel, all_sequences, perturbed, random_isan

from ._approx_figures import plot_sensitivity
from ._metrics import tv_distance

__all__ = ["sensitivity_study", "DEFAULT_VALUES", "DEFAULT_BASE"]

#: Values swept per parameter (orders of magnitude around the spec's defaults β = 2 and g = ε/(32T²)).
DEFAULT_VALUES = {
    "beta": [1.0, 1.5, 2.0, 4.0, 16.0, 128.0],
    "threshold": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
    "epochs": [1, 2, 4, 8, 16, 32],
}
#: The base setting the other parameters keep while one is swept.
DEFAULT_BASE = {"beta": 2.0, "threshold": 1e-2, "epochs": 12}


def _truth(model: LanguageModel) -> torch.Tensor:
    if hasattr(model, "distribution"):
        return model.distribution()
    return model.log_prob(all_sequences(model.vocab_size, model.horizon)).exp()


def sensitivity_study(
    model: LanguageModel | None = None,
    *,
    rank: int = 4,
    epsilon: float = 0.1,
    parameters: Sequence[str] = ("beta", "threshold", "epochs"),
    values: Mapping[str, Sequence[float]] | None = None,
    base: Mapping[str, float] | None = None,
    seed: int = 0,
    out_dir=None,
    learner_kwargs: Mapping | None = None,
) -> dict[str, list[dict]]:
    """Learn with one of β, g, K varied at a time; record TV, queries, witnesses, infeasibility.

    Parameters
    ----------
    model : LanguageModel with V**T small enough to enumerate, optional
        Default: ``perturbed(random_isan(3, 6, 4), 1e-3)`` at rank 4 (single tokens give rank 2, so
        every level needs witnesses; 364 prefixes, so queries do not saturate at once), where the
        parameters matter: exactly low-rank models are learned exactly for most settings.
    rank, epsilon : passed to :func:`logitrank.algorithms.learn_approx`.
    parameters : names among "beta", "threshold", "epochs".
    values : mapping name → values (default ``DEFAULT_VALUES``).
    base : mapping name → value held while another is swept (default ``DEFAULT_BASE``).
    seed : int, seeds the default model and every learner run.
    out_dir : path, optional. Where ``sensitivity_<name>.png/.pdf`` go; no figures when None.
    learner_kwargs : further keyword arguments of ``learn_approx`` (default n_validation=16,
        n_spanner=32).

    Returns
    -------
    dict name → list of rows (value, TV, queries, witnesses, infeasibility rate, accepted, epochs,
    seconds); with ``out_dir``, the figure paths under the key "figures".
    """
    values = {**DEFAULT_VALUES, **(values or {})}
    base = {**DEFAULT_BASE, **(base or {})}
    unknown = [p for p in parameters if p not in DEFAULT_VALUES]
    if unknown:
        raise ValueError(f"parameters must be among {tuple(DEFAULT_VALUES)}; got {unknown}")
    kwargs = {"n_validation": 16, "n_spanner": 32, **(learner_kwargs or {})}
    if model is None:
        model = perturbed(random_isan(3, 6, 4, generator=seed), 1e-3, generator=seed)
    truth = _truth(model)
    out: dict[str, list] = {}
    figures = {}
    for name in parameters:
        rows = []
        for v in values[name]:
            setting = {**base, name: v}
            start = time.perf_counter()
            learned, rep = learn_approx(model, rank=rank, epsilon=epsilon, beta=float(setting["beta"]),
                                        threshold=float(setting["threshold"]), epochs=int(setting["epochs"]),
                                        generator=seed, **kwargs)
            rows.append({
                "value": v, "TV": tv_distance(truth, learned.distribution()), "queries": rep.queries,
                "witnesses": sum(rep.witnesses), "infeasibility rate": rep.infeasibility_rate,
                "accepted": rep.accepted, "epochs": rep.epochs, "dropped epochs": len(rep.dropped_epochs),
                "max miss rate": rep.max_miss_rate, "seconds": round(time.perf_counter() - start, 2),
            })
        out[name] = rows
        if out_dir is not None:
            figures[name] = str(plot_sensitivity(name, rows, out_dir)[0])
    if figures:
        out["figures"] = figures
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sensitivity of learn_approx to β, g and K (figures + table).")
    parser.add_argument("--out", default="results/figures", help="figure directory (default results/figures)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = sensitivity_study(seed=args.seed, out_dir=args.out)
    for name in ("beta", "threshold", "epochs"):
        print(f"\n{name}")
        print(f"{'value':>8} {'TV':>10} {'queries':>8} {'witn':>5} {'infeas':>7} {'acc':>4} {'epochs':>6} {'drop':>4} {'sec':>6}")
        for r in result[name]:
            print(f"{r['value']:>8g} {r['TV']:>10.3g} {r['queries']:>8} {r['witnesses']:>5} {r['infeasibility rate']:>7.3f} "
                  f"{'yes' if r['accepted'] else 'no':>4} {r['epochs']:>6} {r['dropped epochs']:>4} {r['seconds']:>6}")
    print("\nfigures:", result.get("figures"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
