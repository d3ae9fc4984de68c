"""Figures of T11 (Lemma C.18: LinGen's KL against its bound) and X2 (learning from conditional samples).

Each function draws on a standalone :class:`matplotlib.figure.Figure`, writes ``<name>.png`` and
``<name>.pdf`` through :func:`logitrank.verify._figures.save_figure` and returns the two paths. The
functions only draw; the numbers come from the checks in :mod:`logitrank.verify.checks._theory_claims`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ._figures import save_figure

__all__ = ["plot_kl_vs_bound", "plot_samples_per_logit", "plot_tv_vs_samples"]


def plot_kl_vs_bound(points: Sequence[Mapping], out_dir, *, name: str = "t11_kl_vs_bound") -> tuple[Path, Path]:
    """KL(P_truth ‖ P_LinGen) against Lemma C.18's bound, one marker per grid point, coloured by k.

    Parameters
    ----------
    points : sequence of dicts with keys "k", "KL", "bound"
    out_dir : path
    """
    fig = Figure(figsize=(4.2, 3.4))
    ax = fig.add_subplot()
    ks = sorted({p["k"] for p in points})
    floor = 1e-16
    for k in ks:
        sel = [p for p in points if p["k"] == k]
        x = np.maximum([p["bound"] for p in sel], floor)
        y = np.maximum([p["KL"] for p in sel], floor)
        ax.loglog(x, y, "o", ms=3, alpha=0.7, label=f"k = {k}")
    lo = max(floor, min(min(p["bound"] for p in points), min(p["KL"] for p in points)) / 2) if points else floor
    hi = max(max(p["bound"] for p in points), 1.0) * 2 if points else 1.0
    ax.loglog([lo, hi], [lo, hi], "k--", lw=1, label="KL = bound")
    ax.set_xlabel(r"bound $2k\sqrt{a\Delta+\gamma(a)(1+\|v\|^2)}$ (min over $a$)")
    ax.set_ylabel(r"$D_{KL}(P_{truth}\,\|\,P_{LinGen})$ (exact)")
    ax.set_title("T11: Lemma C.18 on random ISANs")
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, name)


def plot_samples_per_logit(lambdas, measured, predicted, out_dir, *, slope: float | None = None,
                           name: str = "x2_samples_per_logit") -> tuple[Path, Path]:
    """Samples per logit query needed for error ξ against the logit range λ (log y axis).

    Parameters
    ----------
    lambdas, measured, predicted : (p,) sequences
        λ, the measured smallest N, and the sample-count rule's N.
    slope : float, optional
        Fitted d ln N / dλ, shown in the legend.
    """
    fig = Figure(figsize=(4.2, 3.2))
    ax = fig.add_subplot()
    label = "measured" + (rf" (slope {slope:.2f}; $e^{{2\lambda}}$ has 2)" if slope is not None else "")
    ax.semilogy(lambdas, measured, "o-", label=label)
    ax.semilogy(lambdas, predicted, "s--", label="rule (upper bound)")
    ax.set_xlabel("logit range λ (max |mean-centred logit|)")
    ax.set_ylabel("samples per logit query")
    ax.set_title("X2: cost of one logit from conditional samples")
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, name)


def plot_tv_vs_samples(curves: Mapping[str, Sequence[tuple[float, float]]], out_dir, *, epsilon: float | None = None,
                       name: str = "x2_tv_vs_samples") -> tuple[Path, Path]:
    """TV(learned, truth) against the total number of conditional samples spent, one line per learner.

    Parameters
    ----------
    curves : mapping label → [(samples, TV), …]; a TV of None (learner failed) is drawn at 1
    epsilon : float, optional
        Drawn as a horizontal line.
    """
    fig = Figure(figsize=(4.2, 3.2))
    ax = fig.add_subplot()
    for label, pts in curves.items():
        x = [s for s, _ in pts]
        y = [1.0 if tv is None else max(tv, 1e-16) for _, tv in pts]
        ax.loglog(x, y, "o-", label=label)
    if epsilon is not None:
        ax.axhline(epsilon, color="k", ls=":", lw=1, label=f"ε = {epsilon:g}")
    ax.set_xlabel("conditional samples spent (total)")
    ax.set_ylabel("TV(learned, truth)")
    ax.set_title("X2: learning from conditional samples only")
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, name)
