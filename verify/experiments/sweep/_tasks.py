"""Sweep tasks: functions ``(config, seed) -> dict of numbers``, built in or found by import path.

Built-in tasks (names for a spec's ``task``):

* ``learn`` — learn the cell's model with the exact learner (``learner = "exact"``, paper A,
  Algorithms 2–3, :func:`logitrank.algorithms.learn_isan`) or the approximate one
  (``learner = "approx"``, paper B, :func:`logitrank.algorithms.learn_approx`); metrics:
  ``tv_truth`` (TV of the learned model to the noiseless model, the one that matters) and, when
  the oracle is noisy (ξ > 0), ``tv_oracle`` beside it (TV to the model the learner queried); both
  exact when V^T <= 2^20, else :func:`logitrank.verify.tv_estimate` to ±``tv_half_width``;
  ``queries``, ``learn_seconds`` and the learner's own counters. The exact learner's ``rank_tol``
  may be ``"auto"``: max(1e-8, 10·ξ), above the oracle's noise as X3 measures it. The approximate
  learner takes the :class:`~logitrank.algorithms.ApproxSettings` keys of
  :data:`~._cell_checks.APPROX_KEYS` (``delta``, ``until``, ``widening``, ``max_queries``,
  ``oracle_error``, …); ``oracle_error = "xi"`` tells its certificate the cell's own ξ, so that it
  bounds TV to the truth. Its rows carry the certified bound ``tv_bound``, the ``oracle_widening``
  inside it, ``cert_bounds_tv_truth`` (1: the bound is on TV to the truth, ``oracle_error`` >= ξ;
  0: on TV to the oracle — a noisy oracle whose error the certificate was not told) and
  ``tv_certified``, the measured TV that the bound bounds (``tv_truth`` or ``tv_oracle``).
* ``model_spectrum`` — α of a named model on a corpus, through the same ``SpectrumConfig`` as
  ``logitrank spectrum`` (keys: its fields);
* ``spectrum`` — the singular values of one level's logit matrix (paper A, §3.1): power-law
  exponent ``alpha`` (Appendix A.1.1), average KL to rank r (Definition 3.1) and the sampled
  ε_avg at rank r (:func:`logitrank.synth.approx_rank_error`).
* ``logit_ranks`` — the numerical rank of every level (Fact C.4): ``max_rank``, ``mean_rank``.
* ``noop`` and ``busy`` — engine diagnostics (no work; ``work`` units of CPU-bound numpy work).

Model families (key ``family``; every family takes ``xi``, the noisy-oracle wrapper
:func:`logitrank.synth.perturbed` with ±ξ per logit, default 0, and ``model_seed``, which draws the
model from a fixed seed instead of the cell's so that a whole grid shares one model):

===============  ============================================================
random_isan      V, T, d (paper A, Def. 4.2; logit rank exactly d)
power_law_isan   V, T, d, alpha (singular values ~ i^−α)
perturbed_isan   V, T, d, perturbation (random ISAN + a high-rank perturbation)
eps_avg_isan     V, T, d, eps_avg (perturbed ISAN whose sampled ε_avg at rank d is eps_avg)
noisy_parity     n (bits), noise (paper A, Def. C.10; V = 2, T = n + 1)
copying          n (bits), strength (paper A, Fact C.9; V = 2, T = 2n)
ssm              V, T, state_dim, input_dim, output_dim (paper A, Def. C.6)
===============  ============================================================

Every cell is checked against its task before any cell runs (``task.validate``, see
:mod:`._cell_checks`): a bad value, type or size is an error naming the key, not a failed row.

Other tasks. A spec file is data and never runs code on its own: its ``task`` may name a built-in,
a task registered by an installed package under the entry-point group ``logitrank.sweep_tasks``
(``[project.entry-points."logitrank.sweep_tasks"] mytask = "mypkg.tasks:mytask"``; the spec names
it ``"mytask"`` or ``"mypkg.tasks:mytask"``), or, only when the caller allows it explicitly
(``run_sweep(..., allow_import_task=True)``, ``logitrank sweep run --allow-import-task``), any
``"package.module:function"``, imported and called on every worker. From Python, pass the
function itself (``run_sweep(spec, task=fn)``). Randomness: a task derives everything from its
``seed`` argument.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ._cell_checks import (
    FAMILIES,
    approx_settings,
    check_learn,
    check_logit_ranks,
    check_spectrum,
    rank_tol_for,
)

__all__ = ["ENTRY_POINT_GROUP", "FAMILIES", "TASKS", "build_model", "resolve_task", "sub_seed", "task_ref"]

Task = Callable[[Mapping, int], Mapping]

#: entry-point group of installed packages' sweep tasks (a spec may name them without --allow-import-task)
ENTRY_POINT_GROUP = "logitrank.sweep_tasks"
#: tasks of this package that live outside this module, named by import path in their specs and stores
_PACKAGE_TASKS = ("logitrank.verify.experiments._sensitivity:sensitivity_cell",)
#: V^T above which TV is estimated by Monte Carlo instead of enumerated
ENUMERATION_LIMIT = 2**20


def sub_seed(seed: int, k: int) -> int:
    """An independent seed for the k-th random piece of a cell (``SeedSequence(seed, spawn_key=(k,))``)."""
    return int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1, dtype=np.uint64)[0] >> 1)


def _family(config: Mapping) -> tuple[str, dict]:
    family = config.get("family", "random_isan")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}; got {family!r}")
    params = {k: config.get(k, v) for k, v in FAMILIES[family].items()}
    xi = config.get("xi", 0.0)
    if isinstance(xi, bool) or not isinstance(xi, (int, float)) or xi < 0:
        raise ValueError(f"xi must be a number >= 0 (oracle noise per logit); got {xi!r}")
    return family, {**params, "xi": float(xi)}


def build_model(config: Mapping, seed: int):
    """The cell's language model: family, parameters and ``xi`` from ``config``, random draws from ``seed``.

    With ``model_seed`` in ``config`` the model's draws (and its noise) come from it instead, so
    every cell of a sweep can share one model (common random numbers across a grid).

    Returns ``(truth, oracle)``: the family's model and the model the learner queries (``truth``
    wrapped by :func:`logitrank.synth.perturbed` with ξ when ``xi > 0``, else ``truth`` itself).
    """
    from logitrank import synth

    family, p = _family(config)
    seed = int(config.get("model_seed", seed))
    g = sub_seed(seed, 0)
    if family == "random_isan":
        truth = synth.random_isan(p["V"], p["T"], p["d"], generator=g)
    elif family == "power_law_isan":
        truth = synth.power_law_isan(p["V"], p["T"], p["d"], float(p["alpha"]), generator=g)
    elif family == "perturbed_isan":
        truth = synth.perturbed(synth.random_isan(p["V"], p["T"], p["d"], generator=g), float(p["perturbation"]),
                                generator=sub_seed(seed, 1))
    elif family == "eps_avg_isan":
        truth = _eps_avg_isan(p["V"], p["T"], p["d"], float(p["eps_avg"]), seed)
    elif family == "noisy_parity":
        rng = np.random.default_rng(g)
        secret = rng.integers(0, 2, size=int(p["n"]))
        secret[0] = 1
        truth = synth.noisy_parity(secret.tolist(), float(p["noise"]))
    elif family == "copying":
        truth = synth.copying(int(p["n"]), float(p["strength"]))
    else:
        truth = synth.random_linear_ssm(p["V"], p["T"], state_dim=p["state_dim"], input_dim=p["input_dim"],
                                        output_dim=p["output_dim"], generator=g)
    oracle = synth.perturbed(truth, p["xi"], generator=sub_seed(seed, 2)) if p["xi"] > 0 else truth
    return truth, oracle


def _eps_avg_isan(V: int, T: int, d: int, target: float, seed: int, iterations: int = 4):
    """A random dim-d ISAN plus the perturbation of :func:`logitrank.synth.perturbed`, its size ε set so that
    the sampled ε_avg at rank d (:func:`logitrank.synth.approx_rank_error`, max over levels) equals ``target``.

    ε_avg(ε) is close to linear in ε, so ``iterations`` fixed-point steps ε ← ε·target/ε_avg(ε),
    all on the same histories and futures, settle it; the learn task reports ε_avg re-measured on
    fresh samples beside it.
    """
    from logitrank import synth

    if not target > 0:
        raise ValueError(f"eps_avg must be > 0; got {target!r}")
    base = synth.random_isan(V, T, d, generator=sub_seed(seed, 0))
    salt, probe = sub_seed(seed, 1), sub_seed(seed, 6)
    eps = 1.0
    for _ in range(iterations):
        err = float(synth.approx_rank_error(synth.perturbed(base, eps, generator=salt), d, generator=probe).max())
        if err <= 0:
            raise ValueError(f"eps_avg_isan: the perturbation is invisible at rank d={d} (V={V}, T={T}); "
                             "lower d or raise V or T")
        eps *= target / err
    return synth.perturbed(base, eps, generator=salt)


def _distribution(model):
    from logitrank.synth import all_sequences

    if hasattr(model, "distribution"):
        return model.distribution()
    return model.log_prob(all_sequences(model.vocab_size, model.horizon)).exp()


def _tv(targets: Mapping, learned, seed: int, config: Mapping) -> dict:
    """TV(target, learned) for each named target: exact up to V^T = 2^20, else Monte Carlo to ±``tv_half_width``."""
    from ..._metrics import tv_distance, tv_estimate

    out = {}
    for name, target in targets.items():
        if target.vocab_size ** target.horizon <= ENUMERATION_LIMIT:
            p = _distribution(target)
            q = _distribution(learned).to(p.dtype)
            out[name] = tv_distance(p, q / q.sum(), atol=1e-6)
            out["tv_half_width"] = 0.0
        else:
            est = tv_estimate(target, learned, half_width=float(config.get("tv_half_width", 0.005)),
                              generator=sub_seed(seed, 3))
            out.update({name: est.value, "tv_half_width": est.half_width, f"{name}_samples": est.samples})
    return out


def learn(config: Mapping, seed: int) -> dict:
    """Learn the cell's oracle; TV to the noiseless model (``tv_truth``) and, under noise, to the oracle (``tv_oracle``).

    ``measure_tv = false`` skips the TV (cost-only sweeps such as query scaling). ``tv_to`` is read
    from specs written before both were measured and has no effect.
    """
    from logitrank.algorithms import learn_approx, learn_isan

    family, p = _family(config)
    learner = config.get("learner", "exact")
    eps = float(config.get("epsilon", 0.1))
    truth, oracle = build_model(config, seed)
    d = int(p.get("d", 2))
    start = time.perf_counter()
    if learner == "exact":
        learned, rep = learn_isan(oracle, epsilon=eps, rank_tol=rank_tol_for(config),
                                  max_rank=int(config.get("max_rank", max(8, 2 * d))), generator=sub_seed(seed, 4))
        out = {"queries": rep.queries, "rounds": rep.rounds, "dim": rep.hidden_dim, "rank_margin": rep.rank_margin}
    else:
        learned, rep = learn_approx(oracle, rank=int(config.get("rank", d)), epsilon=eps, generator=sub_seed(seed, 4),
                                    **approx_settings(config))
        out = _approx_metrics(rep, p["xi"])
    out["learn_seconds"] = time.perf_counter() - start
    if family == "eps_avg_isan":
        from logitrank.synth import approx_rank_error

        out["eps_avg_measured"] = float(approx_rank_error(truth, d, generator=sub_seed(seed, 5)).max())
    if not config.get("measure_tv", True):
        return out
    targets = {"tv_truth": truth, **({"tv_oracle": oracle} if oracle is not truth else {})}
    out = {**_tv(targets, learned, seed, config), **out}
    if "cert_bounds_tv_truth" in out:
        out["tv_certified"] = out["tv_truth"] if out["cert_bounds_tv_truth"] else out["tv_oracle"]
    return out


learn.validate = check_learn


def _approx_metrics(rep, xi: float) -> dict:
    """The approximate learner's row: its counters, the certified bound and which TV it bounds.

    The certificate bounds TV to the oracle, widened to TV to the truth when ``oracle_error`` is at
    least the oracle's true per-logit error ξ (:func:`logitrank.synth.perturbed` errs by exactly ±ξ):
    ``cert_bounds_tv_truth`` is 1 then (and whenever ξ = 0, where the two coincide), else 0.
    """
    told = rep.settings.oracle_error
    return {"queries": rep.queries, "accepted": int(rep.accepted), "epochs": rep.epochs,
            "witnesses": sum(rep.witnesses), "lp_solves": rep.lp_solves, "lp_infeasible": rep.lp_infeasible,
            "infeasibility_rate": rep.infeasibility_rate, "dropped_epochs": len(rep.dropped_epochs),
            "accepted_by_certificate": int(rep.accepted_by == "certificate"), "tv_bound": rep.tv_bound,
            "oracle_widening": rep.oracle_widening, "cert_bounds_tv_truth": int(told >= xi),
            "cert_queries": rep.cert_queries}


def spectrum(config: Mapping, seed: int) -> dict:
    """α of level ``level`` (default T // 2), average KL to rank ``r`` (default d) and sampled ε_avg at rank r."""
    import torch

    from logitrank.algorithms import avg_kl_to_rank, fit_power_law, level_logit_matrix
    from logitrank.synth import approx_rank_error

    _, p = _family(config)
    _, model = build_model(config, seed)
    T, V = model.horizon, model.vocab_size
    t = int(config.get("level", T // 2))
    r = int(config.get("r", p.get("d", 2)))
    L = level_logit_matrix(model, t).double()  # (V**t, m·V)
    s = torch.linalg.svdvals(L)
    kept = s[s > s[0] * 1e-12] if s[0] > 0 else s[:0]
    alpha = fit_power_law(kept.numpy(), indexing="original").alpha if kept.numel() >= 5 else float("nan")
    r_eff = min(r, min(L.shape))
    return {"alpha": float(alpha), "kl_to_rank": float(avg_kl_to_rank(L, r_eff, V)),
            "eps_avg_at_r": float(approx_rank_error(model, r, generator=sub_seed(seed, 5)).max()),
            "sigma_ratio": float(s[min(r, s.numel() - 1)] / s[0]) if s[0] > 0 else 0.0}


spectrum.validate = check_spectrum


#: keys a ``model_spectrum`` cell may set: the fields of :class:`~logitrank.verify.experiments.SpectrumConfig`
MODEL_SPECTRUM_KEYS = frozenset({"model", "corpus", "n", "k", "lengths", "device", "dtype", "scale", "out"})


def _spectrum_config(config: Mapping, seed: int, out):
    from .._spectrum import SpectrumConfig

    unknown = sorted(set(config) - MODEL_SPECTRUM_KEYS)
    if unknown:
        raise ValueError(f"model_spectrum: unknown key(s) {', '.join(unknown)}; keys: {', '.join(sorted(MODEL_SPECTRUM_KEYS))}")
    given = {k: v for k, v in config.items() if k not in ("scale", "out")}
    if "lengths" in given and given["lengths"] is not None:
        given["lengths"] = tuple(given["lengths"])
    return SpectrumConfig.from_preset(config.get("scale", "full"), None, seed=seed, out=out, **given)


def model_spectrum(config: Mapping, seed: int) -> dict:
    """α of a named model's extended logit matrix on a corpus (paper A, §3.1): the same
    :class:`~logitrank.verify.experiments.SpectrumConfig` and :func:`~logitrank.verify.experiments.compute_spectrum`
    as ``logitrank spectrum``, the cell's seed as the cut's seed; files under ``out`` (else a temporary folder)."""
    import tempfile

    from .._spectrum import compute_spectrum

    with tempfile.TemporaryDirectory(prefix="logitrank-spectrum-") as tmp:
        cfg = _spectrum_config(config, seed, Path(config["out"]) / f"seed{seed}" if config.get("out") else Path(tmp))
        s = compute_spectrum(cfg).summary
    nan = float("nan")
    return {"alpha": s["alpha (paper indexing)"] or nan, "r_squared": s["R² (paper indexing)"] or nan,
            "alpha_original": s["alpha (original indexing)"] or nan,
            "alpha_spread": nan if s["alpha spread over downsizing (paper indexing)"] is None
            else s["alpha spread over downsizing (paper indexing)"],
            "n": s["|H|"], "matrix_seconds": s["seconds"]["matrix"]}


def _check_model_spectrum(config: Mapping) -> None:
    from .._spectrum import check_inputs

    check_inputs(_spectrum_config(config, 0, None))


model_spectrum.validate = _check_model_spectrum


def logit_ranks(config: Mapping, seed: int) -> dict:
    """Numerical rank of every level's logit matrix (float64 SVD, default tolerance)."""
    from logitrank.algorithms import level_ranks

    _, model = build_model(config, seed)
    ranks = level_ranks(model)
    return {"max_rank": max(ranks), "mean_rank": float(np.mean(ranks)), **{f"rank_{t}": r for t, r in enumerate(ranks)}}


logit_ranks.validate = check_logit_ranks


def noop(config: Mapping, seed: int) -> dict:
    """No work: the engine's own cost per cell."""
    return {"seed_mod": seed % 1000}


def busy(config: Mapping, seed: int) -> dict:
    """``work`` units (default 10) of CPU-bound single-threaded work (a Python-level LCG loop)."""
    x = seed % 2**31
    for _ in range(int(config.get("work", 10)) * 100_000):
        x = (1103515245 * x + 12345) % 2**31
    return {"x": x / 2**31}


def _check_busy(config: Mapping) -> None:
    from logitrank._validation import check_int

    if "work" in config:
        check_int("work", config["work"], minimum=0, maximum=10**6)


busy.validate = _check_busy


#: functions name → task or None, tried before the import path (packages above this one add theirs:
#: ``logitrank.verify.claims._claim_sweep`` adds "claim:ID"), so this package imports nothing above it
TASK_RESOLVERS: list[Callable[[str], Task | None]] = []

TASKS: dict[str, Task] = {"learn": learn, "spectrum": spectrum, "model_spectrum": model_spectrum, "logit_ranks": logit_ranks,
                          "noop": noop, "busy": busy}


def task_ref(task: str | Callable) -> str:
    """The string a spec and the store use for ``task``: a built-in name or ``"module:qualname"``."""
    if isinstance(task, str):
        return task
    if not callable(task):
        raise TypeError(f"task must be a built-in name, 'package.module:function' or a callable; got {type(task).__name__}")
    for name, fn in TASKS.items():
        if fn is task:
            return name
    ref = getattr(task, "task_ref", None)  # a resolved task that knows its own name (e.g. "claim:E1")
    if isinstance(ref, str):
        return ref
    return f"{task.__module__}:{task.__qualname__}"


def registered_tasks() -> dict[str, str]:
    """Task names a spec may use without ``allow_import_task``: built-ins, then entry points (name → value).

    Built-ins map to their own name; an entry point of the group :data:`ENTRY_POINT_GROUP` maps its
    name to its ``"module:function"`` value (a spec may give either).
    """
    from importlib.metadata import entry_points

    out = {name: name for name in TASKS}
    out.update({ref: ref for ref in _PACKAGE_TASKS})
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name, ep.value)
    return out


def _import(task: str, ref: str) -> Task:
    module, _, name = ref.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"task {task!r}: cannot import module {module!r} ({err})") from None
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"task {task!r}: module {module!r} has no attribute {name!r}")
    if not callable(obj):
        raise TypeError(f"task {task!r} is not callable; got {type(obj).__name__}")
    return obj


def resolve_task(task: str | Callable, *, allow_import: bool = False) -> Task:
    """The function of a registered task name, or ``task`` itself when callable.

    Registered: the built-ins (:data:`TASKS`) and the entry points of :data:`ENTRY_POINT_GROUP`
    (by name or by value). Any other ``"package.module:function"`` is imported only with
    ``allow_import=True``: a spec file must not run code its reader did not choose to run.
    """
    if callable(task):
        return task
    if not isinstance(task, str):
        raise TypeError(f"task must be a built-in name, 'package.module:function' or a callable; got {type(task).__name__}")
    if task in TASKS:
        return TASKS[task]
    for resolver in TASK_RESOLVERS:  # e.g. "claim:E1" (logitrank.verify.claims._claim_sweep): a claim check per cell
        found = resolver(task)
        if found is not None:
            return found
    registered = registered_tasks()
    if task in registered:
        return _import(task, registered[task])
    if task in registered.values():
        return _import(task, task)
    if ":" not in task:
        raise ValueError(f"task must be a registered task {sorted(registered)} (or 'package.module:function' with "
                         f"--allow-import-task); got {task!r}")
    if not allow_import:
        raise ValueError(f"task {task!r} is not a registered task {sorted(registered)}: a spec may name only those, "
                         f"so that a spec file cannot run arbitrary code. Register it under the entry-point group "
                         f"{ENTRY_POINT_GROUP!r}, or, if you trust this spec, pass --allow-import-task "
                         f"(run_sweep(..., allow_import_task=True))")
    return _import(task, task)
