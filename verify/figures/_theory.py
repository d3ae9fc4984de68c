"""Figures of T11 (Lemma C.18: LinGen's KL against its bound) and X2 (learning from conditional samples).

Each function draws on a standalone :class:`matplotlib.figure.Figure` in the paper style of
:mod:`logitrank.verify.figures._style`, writes ``<name>.png`` and
``<name>.pdf`` through :func:`logitrank.verify.figures._common.save_figure` and returns the two paths. The
functions only draw; the numbers come from the checks in :mod:`logitrank.verify.claims.checks._theory_claims`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._common import save_figure
from ._style import PALETTE, finish, math_symbols, paper_figure, paper_style

__all__ = ["plot_kl_vs_bound", "plot_samples_per_logit", "plot_tv_vs_samples"]


@paper_style
def plot_kl_vs_bound(points: Sequence[Mapping], out_dir, *, name: str = "t11_kl_vs_bound") -> tuple[Path, Path]:
    """KL(P_truth ‖ P_LinGen) against Lemma C.18's bound, one marker per grid point, coloured by k.

    Parameters
    ----------
    points : sequence of dicts with keys "k", "KL", "bound"
    out_dir : path
    """
    fig, ax = paper_figure()
    ks = sorted({p["k"] for p in points})
    floor = 1e-16
    markers = ("o", "s", "^", "D", "v", "P", "X")
    for i, k in enumerate(ks):
        sel = [p for p in points if p["k"] == k]
        x = np.maximum([p["bound"] for p in sel], floor)
        y = np.maximum([p["KL"] for p in sel], floor)
        ax.loglog(x, y, markers[i % len(markers)], ms=3, alpha=0.75, ls="none", color=PALETTE[i % len(PALETTE)],
                  label=f"$k$ = {k}")
    lo = max(floor, min(min(p["bound"] for p in points), min(p["KL"] for p in points)) / 2) if points else floor
    hi = max(max(p["bound"] for p in points), 1.0) * 2 if points else 1.0
    ax.loglog([lo, hi], [lo, hi], "k--", lw=0.8, label="KL = bound")
    ax.set_xlabel(r"bound $2k\sqrt{a\Delta+\gamma(a)(1+\|v\|^2)}$, min over $a$ (nats)")
    ax.set_ylabel(r"$D_{KL}(P_{truth}\,\|\,P_{LinGen})$ (nats)")
    ax.set_title("T11: Lemma C.18 on random ISANs")
    finish(ax)
    return save_figure(fig, out_dir, name)


@paper_style
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
    fig, ax = paper_figure()
    label = "measured" + (rf" (slope {slope:.2f}; $e^{{2\lambda}}$ has 2)" if slope is not None else "")
    ax.semilogy(lambdas, measured, "o-", color=PALETTE[0], label=label)
    ax.semilogy(lambdas, predicted, "s--", mfc="none", color=PALETTE[1], label="rule (upper bound)")
    ax.set_xlabel(r"logit range $\lambda$ = max |mean-centred logit| (nats)")
    ax.set_ylabel(r"samples per logit query for error $\xi$")
    ax.set_title("X2: cost of one logit from conditional samples")
    finish(ax)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_tv_vs_samples(curves: Mapping[str, Sequence[tuple[float, float]]], out_dir, *, epsilon: float | None = None,
                       name: str = "x2_tv_vs_samples") -> tuple[Path, Path]:
    """TV(learned, truth) against the total number of conditional samples spent, one line per learner.

    Parameters
    ----------
    curves : mapping label → [(samples, TV), …]; a TV of None (learner failed) is drawn at 1
    epsilon : float, optional
        Drawn as a horizontal line.
    """
    fig, ax = paper_figure()
    markers = ("o", "s", "^", "D")
    for i, (label, pts) in enumerate(curves.items()):
        x = [s for s, _ in pts]
        y = [1.0 if tv is None else max(tv, 1e-16) for _, tv in pts]
        ax.loglog(x, y, "-", marker=markers[i % len(markers)], color=PALETTE[i % len(PALETTE)], label=math_symbols(label))
    if epsilon is not None:
        ax.axhline(epsilon, color="k", ls=":", lw=0.8, label=rf"$\varepsilon$ = {epsilon:g}")
    ax.set_xlabel("conditional samples spent (total)")
    ax.set_ylabel("TV(learned, truth) (failed run: 1)")
    ax.set_title("X2: learning from conditional samples only")
    finish(ax)
    return save_figure(fig, out_dir, name)
