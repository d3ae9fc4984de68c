"""Sweep tasks: functions ``(config, seed) -> dict of numbers``, built in or found by import path.

Built-in tasks (names for a spec's ``task``):

* ``learn`` — learn the cell's model with the exact learner (``learner = "exact"``, paper A,
  Algorithms 2–3, :func:`logitrank.algorithms.learn_isan`) or the approximate one
  (``learner = "approx"``, paper B, :func:`logitrank.algorithms.learn_approx`); metrics: ``tv``
  (to the oracle; exact when V^T <= 2^20, else :func:`logitrank.verify.tv_estimate` with its
  ``tv_half_width``), ``queries``, ``seconds`` and the learner's own counters.
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

Any other function is a task when the spec names it ``"package.module:function"``; it must be
importable on every worker. Randomness: a task derives everything from its ``seed`` argument.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["FAMILIES", "TASKS", "build_model", "resolve_task", "sub_seed", "task_ref"]

Task = Callable[[Mapping, int], Mapping]

FAMILIES = {
    "random_isan": {"V": 2, "T": 4, "d": 2},
    "power_law_isan": {"V": 4, "T": 4, "d": 4, "alpha": 1.0},
    "perturbed_isan": {"V": 2, "T": 4, "d": 2, "perturbation": 1e-3},
    "eps_avg_isan": {"V": 3, "T": 5, "d": 2, "eps_avg": 0.05},
    "noisy_parity": {"n": 4, "noise": 0.1},
    "copying": {"n": 3, "strength": 8.0},
    "ssm": {"V": 2, "T": 4, "state_dim": 2, "input_dim": 2, "output_dim": 2},
}
_MODEL_KEYS = {"family", "xi", "model_seed"}
#: V^T above which TV is estimated by Monte Carlo instead of enumerated
ENUMERATION_LIMIT = 2**20


def sub_seed(seed: int, k: int) -> int:
    """An independent seed for the k-th random piece of a cell (``SeedSequence(seed, spawn_key=(k,))``)."""
    return int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1, dtype=np.uint64)[0] >> 1)


def _check_keys(task: str, config: Mapping, allowed: set) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"task {task!r}: unknown config key(s) {unknown}; allowed keys are {sorted(allowed)}")


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


def _tv(truth, learned, seed: int, config: Mapping) -> dict:
    """TV(truth, learned): exact up to V^T = 2^20, else Monte Carlo to ±``tv_half_width`` at 95%."""
    from .._metrics import tv_distance, tv_estimate

    if truth.vocab_size ** truth.horizon <= ENUMERATION_LIMIT:
        p, q = _distribution(truth), _distribution(learned).to(_distribution(truth).dtype)
        return {"tv": tv_distance(p, q / q.sum(), atol=1e-6), "tv_half_width": 0.0}
    est = tv_estimate(truth, learned, half_width=float(config.get("tv_half_width", 0.005)), generator=sub_seed(seed, 3))
    return {"tv": est.value, "tv_half_width": est.half_width, "tv_samples": est.samples}


_APPROX_KEYS = ("beta", "threshold", "epochs", "n_validation", "n_spanner", "acceptance", "n_cert", "cert_bound",
                "witness_cap", "noise_floor", "patience", "witnesses_per_epoch", "validation_statistic")
_LEARN_KEYS = {"learner", "epsilon", "rank", "max_rank", "rank_tol", "tv_to", "tv_half_width", "measure_tv",
               *_APPROX_KEYS}


def learn(config: Mapping, seed: int) -> dict:
    """Learn the cell's oracle; TV to the oracle (``tv_to = "oracle"``, default) or to the noiseless model ("truth").

    ``measure_tv = false`` skips the TV (cost-only sweeps such as query scaling).
    """
    from logitrank.algorithms import learn_approx, learn_isan

    family, p = _family(config)
    learner = config.get("learner", "exact")
    eps = float(config.get("epsilon", 0.1))
    truth, oracle = build_model(config, seed)
    d = int(p.get("d", 2))
    start = time.perf_counter()
    if learner == "exact":
        learned, rep = learn_isan(oracle, epsilon=eps, rank_tol=float(config.get("rank_tol", 1e-8)),
                                  max_rank=int(config.get("max_rank", max(8, 2 * d))), generator=sub_seed(seed, 4))
        out = {"queries": rep.queries, "rounds": rep.rounds, "dim": rep.hidden_dim, "rank_margin": rep.rank_margin}
    else:
        kwargs = {k: config[k] for k in _APPROX_KEYS if k in config}
        learned, rep = learn_approx(oracle, rank=int(config.get("rank", d)), epsilon=eps, generator=sub_seed(seed, 4),
                                    **kwargs)
        out = {"queries": rep.queries, "accepted": int(rep.accepted), "epochs": rep.epochs,
               "witnesses": sum(rep.witnesses), "lp_solves": rep.lp_solves, "lp_infeasible": rep.lp_infeasible,
               "infeasibility_rate": rep.infeasibility_rate, "dropped_epochs": len(rep.dropped_epochs),
               "accepted_by_certificate": int(rep.accepted_by == "certificate"), "tv_bound": rep.tv_bound,
               "cert_queries": rep.cert_queries}
    out["learn_seconds"] = time.perf_counter() - start
    if family == "eps_avg_isan":
        from logitrank.synth import approx_rank_error

        out["eps_avg_measured"] = float(approx_rank_error(truth, d, generator=sub_seed(seed, 5)).max())
    if not config.get("measure_tv", True):
        return out
    target = oracle if config.get("tv_to", "oracle") == "oracle" else truth
    return {**_tv(target, learned, seed, config), **out}


def _validate_learn(config: Mapping) -> None:
    family, _ = _family(config)
    _check_keys("learn", config, _LEARN_KEYS | _MODEL_KEYS | set(FAMILIES[family]))
    if config.get("learner", "exact") not in ("exact", "approx"):
        raise ValueError(f"learner must be one of ['exact', 'approx']; got {config.get('learner')!r}")
    if config.get("tv_to", "oracle") not in ("oracle", "truth"):
        raise ValueError(f"tv_to must be one of ['oracle', 'truth']; got {config.get('tv_to')!r}")


learn.validate = _validate_learn


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


spectrum.validate = lambda config: _check_keys(
    "spectrum", config, {"level", "r"} | _MODEL_KEYS | set(FAMILIES[_family(config)[0]]))


def logit_ranks(config: Mapping, seed: int) -> dict:
    """Numerical rank of every level's logit matrix (float64 SVD, default tolerance)."""
    from logitrank.algorithms import level_ranks

    _, model = build_model(config, seed)
    ranks = level_ranks(model)
    return {"max_rank": max(ranks), "mean_rank": float(np.mean(ranks)), **{f"rank_{t}": r for t, r in enumerate(ranks)}}


logit_ranks.validate = lambda config: _check_keys(
    "logit_ranks", config, _MODEL_KEYS | set(FAMILIES[_family(config)[0]]))


def noop(config: Mapping, seed: int) -> dict:
    """No work: the engine's own cost per cell."""
    return {"seed_mod": seed % 1000}


def busy(config: Mapping, seed: int) -> dict:
    """``work`` units (default 10) of CPU-bound single-threaded work (a Python-level LCG loop)."""
    x = seed % 2**31
    for _ in range(int(config.get("work", 10)) * 100_000):
        x = (1103515245 * x + 12345) % 2**31
    return {"x": x / 2**31}


TASKS: dict[str, Task] = {"learn": learn, "spectrum": spectrum, "logit_ranks": logit_ranks, "noop": noop, "busy": busy}


def task_ref(task: str | Callable) -> str:
    """The string a spec and the store use for ``task``: a built-in name or ``"module:qualname"``."""
    if isinstance(task, str):
        return task
    if not callable(task):
        raise TypeError(f"task must be a built-in name, 'package.module:function' or a callable; got {type(task).__name__}")
    for name, fn in TASKS.items():
        if fn is task:
            return name
    return f"{task.__module__}:{task.__qualname__}"


def resolve_task(task: str | Callable) -> Task:
    """The function of a built-in name, of ``"package.module:function"``, or ``task`` itself when callable."""
    if callable(task):
        return task
    if not isinstance(task, str):
        raise TypeError(f"task must be a built-in name, 'package.module:function' or a callable; got {type(task).__name__}")
    if task in TASKS:
        return TASKS[task]
    if ":" not in task:
        raise ValueError(f"task must be a built-in task {sorted(TASKS)} or 'package.module:function'; got {task!r}")
    module, _, name = task.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"task {task!r}: cannot import module {module!r} ({err})") from None
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"task {task!r}: module {module!r} has no attribute {name!r}")
    if not callable(obj):
        raise TypeError(f"task {task!r} is not callable")
    return obj
