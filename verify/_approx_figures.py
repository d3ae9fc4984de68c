"""Figures of the approximate-rank learner (paper B): claims B1–B4 and the sensitivity study.

Every function draws on a standalone Agg figure, writes ``<name>.png`` and ``<name>.pdf`` into
``out_dir`` (through :func:`logitrank.verify._figures._save`) and returns the two paths. Data come in as plain
lists of dicts or arrays computed by the checks; nothing here runs a learner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ._figures import save_figure

__all__ = ["plot_tv_vs_error", "plot_witnesses", "plot_coefficient_norms", "plot_queries", "plot_sensitivity"]

_FLOOR = 1e-17  # log axes: exact zeros are drawn here


def _pos(values) -> np.ndarray:
    return np.maximum(np.asarray(values, dtype=np.float64), _FLOOR)


def plot_tv_vs_error(series: Mapping[str, Sequence[dict]], exact: Sequence[dict], out_dir, *, name: str = "B1_tv_vs_eps_avg",
                     epsilon: float | None = None):
    """Left: TV against ε_avg, one marker style per family (hollow = not accepted). Right: exact-rank
    agreement — TV to the truth and to paper A's exact learner, per model.

    ``series[label]`` holds dicts with keys "eps_avg", "TV", "accepted"; ``exact`` dicts with
    "label", "TV truth", "TV exact learner".
    """
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    for k, (label, rows) in enumerate(series.items()):
        x, y = _pos([r["eps_avg"] for r in rows]), _pos([r["TV"] for r in rows])
        acc = np.array([bool(r["accepted"]) for r in rows])
        (line,) = ax.plot(x, y, "-", lw=1, alpha=0.6, label=label)
        ax.plot(x[acc], y[acc], "o", color=line.get_color())
        ax.plot(x[~acc], y[~acc], "o", mfc="none", color=line.get_color())
    if epsilon is not None:
        ax.axhline(epsilon, ls="--", color="grey", lw=1, label=f"target ε = {epsilon}")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("ε_avg (approx_rank_error at the learner's rank)")
    ax.set_ylabel("TV(learned, truth)")
    ax.set_title("B1: TV vs ε_avg (hollow: not accepted)", fontsize=9)
    ax.legend(fontsize=7)
    labels = [r["label"] for r in exact]
    pos = np.arange(len(labels))
    bx.bar(pos - 0.2, _pos([r["TV truth"] for r in exact]), 0.4, label="vs truth")
    bx.bar(pos + 0.2, _pos([r["TV exact learner"] for r in exact]), 0.4, label="vs learn_isan")
    bx.set_yscale("log")
    bx.set_xticks(pos, labels, fontsize=7, rotation=20)
    bx.set_ylabel("TV")
    bx.set_title("exact rank: approx learner vs truth / exact learner", fontsize=9)
    bx.legend(fontsize=7)
    return save_figure(fig, out_dir, name)


def plot_witnesses(exact_rows: Sequence[dict], approx_rows: Sequence[dict], out_dir, *, name: str = "B2_witnesses"):
    """Witnesses per level against d (exact rank, with the d − 1 line) and against the rank cap r
    (approximate models, with the stated elliptical-potential bound)."""
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    d = np.array([r["d"] for r in exact_rows])
    ax.plot(d, [r["max witnesses"] for r in exact_rows], "o", label="max over levels")
    ax.plot(d, [r["mean witnesses"] for r in exact_rows], "s", mfc="none", label="mean over levels")
    grid = np.arange(d.min(), d.max() + 1)
    ax.plot(grid, grid - 1, "k--", lw=1, label="d − 1")
    ax.set_xlabel("d (exact rank)"), ax.set_ylabel("witnesses per level")
    ax.set_title("exact-rank ISANs", fontsize=9)
    ax.legend(fontsize=7)
    if approx_rows:
        r = np.array([row["rank"] for row in approx_rows])
        bx.plot(r, [row["max witnesses"] for row in approx_rows], "o", label="max over levels")
        bx.plot(r, [row["bound"] for row in approx_rows], "k--", lw=1, label="2r·ln(1 + 1/g)")
        bx.set_xlabel("rank cap r"), bx.set_ylabel("witnesses per level")
        bx.set_title("approximately low-rank (power-law ISAN)", fontsize=9)
        bx.legend(fontsize=7)
    return save_figure(fig, out_dir, name)


def plot_coefficient_norms(curves: Mapping[str, dict], beta: float, out_dir, *, name: str = "B3_lp_vs_greedy"):
    """Median ‖c_t‖_∞ over sample paths against t: solid LP, dashed greedy, one colour per model.

    ``curves[label]`` = {"t": [...], "lp": [...], "greedy": [...]}.
    """
    fig = Figure(figsize=(5.4, 3.6))
    ax = fig.add_subplot()
    for label, c in curves.items():
        (line,) = ax.plot(c["t"], _pos(c["lp"]), "-o", ms=3, label=f"{label}: LP")
        ax.plot(c["t"], _pos(c["greedy"]), "--s", ms=3, color=line.get_color(), label=f"{label}: greedy")
    ax.axhline(beta, color="grey", lw=1, ls=":", label=f"β = {beta}")
    ax.set_yscale("log")
    ax.set_xlabel("prefix length t")
    ax.set_ylabel("median of max |c_t,i| over paths")
    ax.set_title("B3: joint LP vs greedy one-step composition", fontsize=9)
    ax.legend(fontsize=6)
    return save_figure(fig, out_dir, name)


def plot_queries(rows: Sequence[dict], out_dir, *, name: str = "B4_queries"):
    """Measured distinct queries against T (one line per d), with our accounting bound dashed."""
    fig = Figure(figsize=(5.4, 3.6))
    ax = fig.add_subplot()
    for d in sorted({r["d"] for r in rows}):
        sel = sorted((r for r in rows if r["d"] == d), key=lambda r: r["T"])
        (line,) = ax.plot([r["T"] for r in sel], [r["queries"] for r in sel], "-o", label=f"d = {d}: measured")
        ax.plot([r["T"] for r in sel], [r["accounting bound"] for r in sel], "--", color=line.get_color(), label=f"d = {d}: bound")
    grid = sorted({r["T"]: r["all prefixes Σ V^t"] for r in rows}.items())
    ax.plot([g[0] for g in grid], [g[1] for g in grid], ":", color="grey", label="all prefixes Σ_t V^t")
    ax.set_yscale("log")
    ax.set_xlabel("horizon T")
    ax.set_ylabel("distinct logit queries")
    ax.set_title("B4: queries of learn_approx (V = 2)", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, name)


def plot_sensitivity(parameter: str, rows: Sequence[dict], out_dir, *, name: str | None = None):
    """Four panels against one parameter (log x): TV, queries, witnesses, LP infeasibility rate;
    hollow markers where the learner did not accept."""
    fig = Figure(figsize=(9.0, 5.6), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    x = np.array([r["value"] for r in rows], dtype=np.float64)
    acc = np.array([bool(r["accepted"]) for r in rows])
    for ax, key, ylabel, logy in zip(
        axes,
        ["TV", "queries", "witnesses", "infeasibility rate"],
        ["TV(learned, truth)", "distinct queries", "witnesses (all levels)", "LP infeasibility rate"],
        [True, False, False, False],
    ):
        y = np.array([r[key] for r in rows], dtype=np.float64)
        y = _pos(y) if logy else y
        ax.plot(x, y, "-", lw=1, color="C0")
        ax.plot(x[acc], y[acc], "o", color="C0")
        ax.plot(x[~acc], y[~acc], "o", mfc="none", color="C0")
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(parameter)
        ax.set_ylabel(ylabel)
    fig.suptitle(f"sensitivity of learn_approx to {parameter} (hollow: not accepted)", fontsize=10)
    return save_figure(fig, out_dir, name or f"sensitivity_{parameter}")
