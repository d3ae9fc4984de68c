"""Sensitivity of the approximate-rank learner to β, the threshold g and the epoch budget K, on the sweep engine.

Paper B's summaries suggest these ablations (vary β and the threshold across orders of magnitude and
watch |F̂|, failures and cost). :func:`sensitivity_study` varies one parameter at a time around a base
setting — one sweep (:mod:`logitrank.verify.experiments.sweep`) whose grid is the union of the three one-parameter
lines, so the shared base point is learned once — and records TV (exact enumeration), distinct
queries, witnesses, the LP infeasibility rate and acceptance; it writes one figure per parameter.
With a ``store`` the rows persist and a rerun reads finished cells. Run it from the command line with

    python -m logitrank.verify.experiments._sensitivity --out results/figures [--seed 0] [--jobs 2] [--store PATH]

or at full scale through ``logitrank check B1 --scale full``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._metrics import tv_distance
from ..figures._approx import plot_sensitivity
from .sweep import Engine, SweepSpec, build_model, load, run_sweep

__all__ = ["DEFAULT_BASE", "DEFAULT_MODEL", "DEFAULT_VALUES", "sensitivity_cell", "sensitivity_study"]

#: Values swept per parameter (orders of magnitude around the restatement's defaults β = 2 and g = ε/(32T²)).
DEFAULT_VALUES = {
    "beta": [1.0, 1.5, 2.0, 4.0, 16.0, 128.0],
    "threshold": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
    "epochs": [1, 2, 4, 8, 16, 32],
}
#: The base setting the other parameters keep while one is swept.
DEFAULT_BASE = {"beta": 2.0, "threshold": 1e-2, "epochs": 12}
#: The default model as a sweep family: ``perturbed(random_isan(3, 6, 4), 1e-3)`` (single tokens give
#: rank 2, so every level needs witnesses; 364 prefixes, so queries do not saturate at once).
DEFAULT_MODEL = {"family": "perturbed_isan", "V": 3, "T": 6, "d": 4, "perturbation": 1e-3}
_LEARNER_KEYS = ("rank", "epsilon", "beta", "threshold", "epochs", "n_validation", "n_spanner", "n_heldout", "delta")


def _truth(model):
    from logitrank.synth import all_sequences

    if hasattr(model, "distribution"):
        return model.distribution()
    return model.log_prob(all_sequences(model.vocab_size, model.horizon)).exp()


def _learn(model, config: Mapping, seed: int) -> dict:
    from logitrank.algorithms import learn_approx

    # the study varies the restatement's β, g and K, so it runs the restatement's acceptance and witness
    # rules (g has no say in the certificate that is learn_approx's default since issue 21)
    kwargs = {"acceptance": "validation", "witness_cap": "none", "noise_floor": False, "patience": None,
              "witnesses_per_epoch": "one", **{k: config[k] for k in _LEARNER_KEYS if k in config}}
    kwargs["epochs"] = int(kwargs["epochs"])
    start = time.perf_counter()
    learned, rep = learn_approx(model, generator=seed, **kwargs)
    p = _truth(model).double()
    return {"TV": tv_distance(p / p.sum(), learned.distribution().double()), "queries": rep.queries,
            "witnesses": sum(rep.witnesses), "infeasibility rate": rep.infeasibility_rate,
            "accepted": int(rep.accepted), "epochs_run": rep.epochs, "dropped epochs": len(rep.dropped_epochs),
            "max miss rate": rep.max_miss_rate, "learn seconds": round(time.perf_counter() - start, 2)}


def sensitivity_cell(config: Mapping, seed: int) -> dict:
    """Sweep task: learn the cell's model (sweep family keys) with the cell's β, g, K and learner settings.

    Common random numbers: with ``crn_seed`` in the config, the model and the learner's samples come
    from it instead of the cell's own seed, so every cell learns the same model from the same draws
    and the differences between cells are the parameter's alone.
    """
    seed = int(config.get("crn_seed", seed))
    model_keys = {k: v for k, v in config.items() if k not in _LEARNER_KEYS and k != "crn_seed"}
    _, model = build_model(model_keys, seed)
    return _learn(model, config, seed)


class _FixedModel:
    """Sweep task learning one given model object (used when :func:`sensitivity_study` gets ``model``)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, config: Mapping, seed: int) -> dict:
        return _learn(self.model, config, int(config.get("crn_seed", seed)))


def sensitivity_study(
    model=None,
    *,
    rank: int = 4,
    epsilon: float = 0.1,
    parameters: Sequence[str] = ("beta", "threshold", "epochs"),
    values: Mapping[str, Sequence[float]] | None = None,
    base: Mapping[str, float] | None = None,
    seed: int = 0,
    out_dir=None,
    learner_kwargs: Mapping | None = None,
    store=None,
    engine: Engine | None = None,
) -> dict[str, list[dict]]:
    """Learn with one of β, g, K varied at a time; record TV, queries, witnesses, infeasibility.

    Parameters
    ----------
    model : LanguageModel with V**T small enough to enumerate, optional
        Default :data:`DEFAULT_MODEL` drawn from ``seed``, where the parameters matter: exactly
        low-rank models are learned exactly for most settings. A given model is learned in-process
        and its rows are not kept (the store keys rows by configuration, and a model object has none).
    rank, epsilon : passed to :func:`logitrank.algorithms.learn_approx`.
    parameters : names among "beta", "threshold", "epochs".
    values : mapping name → values (default ``DEFAULT_VALUES``).
    base : mapping name → value held while another is swept (default ``DEFAULT_BASE``).
    seed : int, seeds the default model and every learner run (common random numbers: the cells
        differ only in the parameter varied, as before the move onto the sweep engine).
    out_dir : path, optional. Where ``sensitivity_<name>.png/.pdf`` go; no figures when None.
    learner_kwargs : further keyword arguments of ``learn_approx`` (default n_validation=16,
        n_spanner=32).
    store : path of the sweep database (rows persist; a rerun reads finished cells); default a
        temporary one.
    engine : :class:`logitrank.verify.experiments.sweep.Engine` (default one job, in-process).

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
    extra = {"n_validation": 16, "n_spanner": 32, **(learner_kwargs or {})}
    bad = [k for k in extra if k not in _LEARNER_KEYS]
    if bad:
        raise ValueError(f"learner_kwargs keys must be among {_LEARNER_KEYS}; got {bad}")
    lines = [{**{k: [float(v)] if k != "epochs" else [int(v)] for k, v in base.items()},
              name: [int(v) if name == "epochs" else float(v) for v in values[name]]} for name in parameters]
    fixed = {"rank": rank, "epsilon": epsilon, **extra, "crn_seed": int(seed),
             **({} if model is not None else DEFAULT_MODEL)}
    spec = SweepSpec(name=f"sensitivity-{'model' if model is not None else 'default'}", task=
                     "logitrank.verify.experiments._sensitivity:sensitivity_cell", grid=lines, fixed=fixed, seed=seed, seeds=1)
    task = _FixedModel(model) if model is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sensitivity.sqlite" if store is None or model is not None else store
        run_sweep(spec, store=db, engine=engine if task is None else Engine(), task=task)
        df = load(db, spec.name)
    out: dict[str, list] = {}
    figures = {}
    for name in parameters:
        rows = []
        for v in values[name]:
            setting = {**base, name: v}
            match = df[(df["beta"] == float(setting["beta"])) & (df["threshold"] == float(setting["threshold"]))
                       & (df["epochs"] == int(setting["epochs"]))].iloc[0]
            if match["status"] != "done":
                raise RuntimeError(f"sensitivity cell {name}={v} failed: {match['error']}")
            rows.append({"value": v, "TV": match["TV"], "queries": int(match["queries"]),
                         "witnesses": int(match["witnesses"]), "infeasibility rate": match["infeasibility rate"],
                         "accepted": bool(match["accepted"]), "epochs": int(match["epochs_run"]),
                         "dropped epochs": int(match["dropped epochs"]), "max miss rate": match["max miss rate"],
                         "seconds": match["learn seconds"]})
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
    parser.add_argument("--jobs", type=int, default=1, help="parallel cells (default 1)")
    parser.add_argument("--store", default="results/logitrank.sqlite", help="sweep database (rerun resumes)")
    args = parser.parse_args(argv)
    result = sensitivity_study(seed=args.seed, out_dir=args.out, store=args.store, engine=Engine(jobs=args.jobs))
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
