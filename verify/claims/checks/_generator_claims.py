"""Checks of the representation facts of paper A, App. C.2: T4 (Fact C.7), T5 (Fact C.9), T6 (Fact C.11)."""

from __future__ import annotations

import itertools

import torch

from logitrank.algorithms import level_ranks
from logitrank.synth import (
    all_sequences,
    copying,
    copying_distribution,
    copying_tv,
    noisy_parity,
    noisy_parity_log_prob,
    random_linear_ssm,
)

from ..._metrics import tv_distance
from ..._presets import Presets
from .._check_api import CheckConfig, ClaimResult, register

EPS64 = torch.finfo(torch.float64).eps


def _tv_tol(T: int) -> float:
    """Each probability is a product of T softmax factors, each exact to a few ulps, so two models that
    agree in exact arithmetic differ in TV by well under 10·T·eps; 100·T·eps leaves room."""
    return 100 * T * EPS64


def _log_prob_gap(a: torch.Tensor, b: torch.Tensor, T: int) -> tuple[float, float]:
    """max |a − b| and its tolerance 100·T·eps·max(1, max|a|) (T summed log-softmax terms)."""
    gap = float((a - b).abs().max())
    return gap, _tv_tol(T) * max(1.0, float(a.abs().max()))


# -- T4: Fact C.7 -----------------------------------------------------------------------------------
#: (V, T, d, p, q) of the SSMs compared by exact TV (enumeration; each size drawn twice), and the
#: long-horizon SSM (V, T, d, p, q, samples) compared on samples.
_T4 = Presets({
    "quick": {"sizes": [(2, 6, 2, 2, 2), (3, 4, 3, 2, 1), (2, 5, 1, 3, 2)], "long": (5, 32, 4, 3, 3, 256)},
    "full": {"sizes": [(2, 10, 3, 2, 2), (3, 7, 4, 3, 2), (4, 5, 2, 4, 3), (2, 12, 5, 1, 4)],
             "long": (8, 128, 8, 6, 6, 2048)},
}, minimums={"sizes": 1, "long": 1}, min_items={"sizes": 1})


@register("T4", presets=_T4)
def check_t4(config: CheckConfig) -> ClaimResult:
    """A linear-in-state SSM and its dim-(d+2q+1) ISAN give the same distribution."""
    spec = config.preset(_T4)
    rows, ok = [], True
    for k, (V, T, d, p, q) in enumerate(list(spec["sizes"]) * 2):
        seed = config.seed * 1000 + k
        ssm = random_linear_ssm(V, T, state_dim=d, input_dim=p, output_dim=q, generator=seed)
        isan = ssm.to_isan()
        tv = tv_distance(ssm.distribution(), isan.distribution())
        rank = max(level_ranks(isan))
        ok &= tv <= _tv_tol(T) and isan.hidden_dim == d + 2 * q + 1 and rank <= d + 2 * q + 1
        rows.append({"V": V, "T": T, "d": d, "p": p, "q": q, "seed": seed, "ISAN dim": isan.hidden_dim,
                     "max level rank": rank, "TV": tv})
    V, T, d, p, q, n = spec["long"]
    ssm = random_linear_ssm(V, T, state_dim=d, input_dim=p, output_dim=q, generator=config.seed)
    seqs = ssm.sample(n, generator=config.seed + 1)
    gap, gap_tol = _log_prob_gap(ssm.log_prob(seqs), ssm.to_isan().log_prob(seqs), T)
    ok &= gap <= gap_tol
    return ClaimResult(
        "T4",
        "holds" if ok else "fails",
        setting={
            "enumerated models": len(rows), "sizes (V,T,d,p,q)": spec["sizes"],
            "long model (V,T,d,p,q,samples)": spec["long"], "dtype": "float64",
            "TV tolerance": "100·T·eps", "log-prob tolerance": "100·T·eps·max(1, max|log p|)",
        },
        figures={
            "max TV": max(r["TV"] for r in rows),
            "long-horizon max |Δ log p|": gap,
            "long-horizon tolerance": gap_tol,
            "max level rank − (d + min(q, V−1) + 1)": max(r["max level rank"] - (r["d"] + min(r["q"], r["V"] - 1) + 1) for r in rows),
            "per model": rows,
        },
        reason="" if ok else "an SSM and its ISAN differ beyond rounding, or the ISAN has the wrong dimension",
    )


# -- T5: Fact C.9 -----------------------------------------------------------------------------------
_STRENGTHS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 48.0, 64.0]
#: bit counts n of the copying task and the increasing strengths C of its ISAN
_T5 = Presets({
    "quick": {"bits": [2, 4, 6], "strengths": _STRENGTHS},
    "full": {"bits": [2, 4, 6, 8, 10], "strengths": _STRENGTHS},
}, minimums={"bits": 1}, min_items={"bits": 1, "strengths": 1})
_TV_TARGET = 1e-6


@register("T5", presets=_T5)
def check_t5(config: CheckConfig) -> ClaimResult:
    """TV(copying ISAN of dim n+1, n-bit copying) falls to ~0 as the strength C grows (exact enumeration)."""
    spec = config.preset(_T5)
    curves, ok, worst_gap = {}, True, 0.0
    for n in spec["bits"]:
        exact = copying_distribution(n)
        tvs = []
        for C in spec["strengths"]:
            model = copying(n, C)
            ok &= model.hidden_dim == n + 1
            tv = tv_distance(model.distribution(), exact)
            worst_gap = max(worst_gap, abs(tv - copying_tv(n, C)))
            tvs.append(tv)
        decreasing = all(b < a for a, b in itertools.pairwise(tvs))
        ok &= decreasing and tvs[-1] < _TV_TARGET
        curves[f"n={n}"] = {"TV": tvs, "strictly decreasing": decreasing, f"final < {_TV_TARGET:g}": tvs[-1] < _TV_TARGET}
    gap_tol = 1e-12  # enumeration sums 4^n terms of size <= 2^−n, each with ~eps relative error
    ok &= worst_gap <= gap_tol
    return ClaimResult(
        "T5",
        "holds" if ok else "fails",
        setting={"n bits": spec["bits"], "strengths C": spec["strengths"], "dtype": "float64",
                 "TV": "exact, by enumeration of all 4^n sequences", "target": _TV_TARGET},
        figures={
            "TV at largest C (max over n)": max(c["TV"][-1] for c in curves.values()),
            "max |enumerated − closed form 1 − σ(C/2)^n|": worst_gap,
            "curves": curves,
        },
        reason="" if ok else "TV does not fall monotonically below the target, or enumeration disagrees with 1 − σ(C/2)^n",
    )


# -- T6: Fact C.11 ----------------------------------------------------------------------------------
_NOISES = [0.05, 0.25, 0.45]
#: secret lengths n and noise rates enumerated exactly; samples per ISAN of the n = 64 check
_T6 = Presets({
    "quick": {"bits": [1, 2, 4, 6], "noises": _NOISES, "long_samples": 512},
    "full": {"bits": [1, 2, 4, 8, 10, 12], "noises": _NOISES, "long_samples": 8192},
}, minimums={"bits": 1, "noises": 0, "long_samples": 1}, min_items={"bits": 1, "noises": 1})
_LONG_BITS = 64  # the secret length of the sampled check (named in the figures' keys)


@register("T6", presets=_T6)
def check_t6(config: CheckConfig) -> ClaimResult:
    """Noisy parity: the dim-2 (paper) and dim-1 ISANs are exact, and the mean-centred logit rank is <= 1."""
    spec = config.preset(_T6)
    gen = torch.Generator().manual_seed(config.seed)
    rows, ok = [], True
    for n in spec["bits"]:
        for noise in spec["noises"]:
            secret = torch.randint(0, 2, (n,), generator=gen).tolist()
            exact = noisy_parity_log_prob(secret, noise, all_sequences(2, n + 1)).exp()
            row = {"n": n, "noise": noise, "secret": "".join(map(str, secret))}
            for d in (2, 1):
                model = noisy_parity(secret, noise, hidden_dim=d)
                tv = tv_distance(model.distribution(), exact)
                rank = max(level_ranks(model))
                ok &= model.hidden_dim == d and tv <= _tv_tol(n + 1) and rank <= 1
                row[f"TV dim {d}"], row[f"max level rank dim {d}"] = tv, rank
            rows.append(row)
    # n = 64: sample from each ISAN and score with the ISAN and the closed form.
    secret = torch.randint(0, 2, (_LONG_BITS,), generator=gen).tolist()
    long = {}
    for d in (2, 1):
        model = noisy_parity(secret, 0.1, hidden_dim=d)
        seqs = model.sample(spec["long_samples"], generator=config.seed + d)
        gap, gap_tol = _log_prob_gap(model.log_prob(seqs), noisy_parity_log_prob(secret, 0.1, seqs), _LONG_BITS + 1)
        parity = (seqs[:, :_LONG_BITS] * torch.tensor(secret)).sum(1) % 2
        ok &= gap <= gap_tol
        long[f"dim {d}"] = {"max |Δ log p|": gap, "tolerance": gap_tol,
                            "flipped fraction (expect 0.1)": float((seqs[:, -1] != parity).double().mean())}
    max_tv = max(max(r["TV dim 2"], r["TV dim 1"]) for r in rows)
    max_rank = max(max(r["max level rank dim 2"], r["max level rank dim 1"]) for r in rows)
    return ClaimResult(
        "T6",
        "holds" if ok else "fails",
        setting={"n bits": spec["bits"], "noise": spec["noises"], "secrets": "uniform random, seeded",
                 "dtype": "float64", "TV": "exact, by enumeration, against the closed form",
                 "TV tolerance": "100·(n+1)·eps", "long check": f"n={_LONG_BITS}, noise 0.1, {spec['long_samples']} samples per ISAN"},
        figures={
            "max TV (dims 2 and 1)": max_tv,
            "max mean-centred level rank": max_rank,
            "n=64 max |Δ log p| (dim 2, dim 1)": [long["dim 2"]["max |Δ log p|"], long["dim 1"]["max |Δ log p|"]],
            "n=64": long,
            "per model": rows,
        },
        reason="" if ok else "a noisy-parity ISAN differs from the closed form, or a level rank exceeds 1",
    )
