"""Figures of the approximate-rank learner (paper B): claims B1–B6 and the sensitivity study.

Every function draws on a standalone Agg figure in the paper style (:mod:`logitrank.verify.figures._style`),
writes ``<name>.png`` and ``<name>.pdf`` into ``out_dir`` (through
:func:`logitrank.verify.figures._common.save_figure`) and returns the two paths. Data come in as plain lists of
dicts or arrays computed by the checks; nothing here runs a learner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import NullLocator

from ._common import save_figure
from ._style import PALETTE, finish, math_symbols, paper_figure, paper_style

__all__ = [
    "plot_coefficient_norms",
    "plot_completeness",
    "plot_queries",
    "plot_regime_map",
    "plot_sensitivity",
    "plot_tv_vs_error",
    "plot_witnesses",
]

_FLOOR = 1e-17  # log axes: exact zeros are drawn here
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _pos(values) -> np.ndarray:
    return np.maximum(np.asarray(values, dtype=np.float64), _FLOOR)


@paper_style
def plot_tv_vs_error(series: Mapping[str, Sequence[dict]], exact: Sequence[dict], out_dir, *, name: str = "B1_tv_vs_eps_avg",
                     epsilon: float | None = None):
    """Left: TV against ε_avg, one colour and marker per family (hollow = not accepted). Right: exact-rank
    agreement — TV to the truth and to paper A's exact learner, per model (two-column figure).

    ``series[label]`` holds dicts with keys "eps_avg", "TV", "accepted"; ``exact`` dicts with
    "label", "TV truth", "TV exact learner". Values below 1e-17 are drawn at 1e-17 (log axes).
    """
    fig, (ax, bx) = paper_figure("two", cols=2, gridspec_kw={"width_ratios": [3, 2]})
    for k, (label, rows) in enumerate(series.items()):
        x, y = _pos([r["eps_avg"] for r in rows]), _pos([r["TV"] for r in rows])
        acc = np.array([bool(r["accepted"]) for r in rows], dtype=bool)
        color, marker = PALETTE[k % len(PALETTE)], _MARKERS[k % len(_MARKERS)]
        ax.plot(x, y, "-", lw=0.8, alpha=0.6, color=color)
        ax.plot(x[acc], y[acc], marker, ls="none", color=color, label=math_symbols(label))
        ax.plot(x[~acc], y[~acc], marker, ls="none", mfc="none", color=color)
    if epsilon is not None:
        ax.axhline(epsilon, ls="--", color="k", lw=0.8, label=rf"target $\varepsilon$ = {epsilon:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\varepsilon_{avg}$ at the learner's rank (nats)")
    ax.set_ylabel("TV(learned, truth)")
    ax.set_title(r"B1: TV vs $\varepsilon_{avg}$ (hollow: not accepted)")
    finish(ax)
    labels = [r["label"] for r in exact]
    pos = np.arange(len(labels))
    bx.bar(pos - 0.2, _pos([r["TV truth"] for r in exact]), 0.4, color=PALETTE[0], label="vs truth")
    bx.bar(pos + 0.2, _pos([r["TV exact learner"] for r in exact]), 0.4, color=PALETTE[1], label="vs learn_isan")
    bx.set_yscale("log")
    bx.set_xticks(pos, labels, rotation=20, ha="right")
    bx.grid(False, axis="x")
    bx.set_ylabel("TV of the approximate learner")
    bx.set_title("exact rank: TV of learn_approx")
    finish(bx)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_witnesses(exact_rows: Sequence[dict], approx_rows: Sequence[dict], out_dir, *, name: str = "B2_witnesses"):
    """Witnesses per level against d (exact rank, with the d − 1 line) and against the rank cap r
    (approximate models, with the stated elliptical-potential bound); two-column figure."""
    fig, (ax, bx) = paper_figure("two", cols=2)
    d = np.array([r["d"] for r in exact_rows])
    ax.plot(d, [r["max witnesses"] for r in exact_rows], "o", color=PALETTE[0], label="max over levels")
    ax.plot(d, [r["mean witnesses"] for r in exact_rows], "s", mfc="none", color=PALETTE[1], label="mean over levels")
    if len(d):
        grid = np.arange(d.min(), d.max() + 1)
        ax.plot(grid, grid - 1, "k--", lw=0.8, label=r"$d - 1$")
    ax.set_xlabel(r"exact rank $d$")
    ax.set_ylabel("witnesses per level")
    ax.set_title("exact-rank ISANs")
    finish(ax, integer_x=True, integer_y=True)
    if approx_rows:
        r = np.array([row["rank"] for row in approx_rows])
        bx.plot(r, [row["max witnesses"] for row in approx_rows], "o", color=PALETTE[0], label="max over levels")
        bx.plot(r, [row["bound"] for row in approx_rows], "k--", lw=0.8, label=r"$2r\,\ln(1 + 1/g)$")
        bx.set_xlabel(r"rank cap $r$")
        bx.set_ylabel("witnesses per level")
        bx.set_title("approximately low rank (power-law ISAN)")
        finish(bx, integer_x=True, integer_y=True)
    else:
        bx.set_axis_off()
    return save_figure(fig, out_dir, name)


@paper_style
def plot_coefficient_norms(curves: Mapping[str, dict], beta: float, out_dir, *, name: str = "B3_lp_vs_greedy"):
    """Median ‖c_t‖_∞ over sample paths against t: solid LP, dashed greedy, one colour per model.

    ``curves[label]`` = {"t": [...], "lp": [...], "greedy": [...]}.
    """
    fig, ax = paper_figure()
    for k, (label, c) in enumerate(curves.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.plot(c["t"], _pos(c["lp"]), "-o", color=color, label=f"{math_symbols(label)}: LP")
        ax.plot(c["t"], _pos(c["greedy"]), "--s", mfc="none", color=color, label=f"{math_symbols(label)}: greedy")
    ax.axhline(beta, color="k", lw=0.8, ls=":", label=rf"$\beta$ = {beta:g}")
    ax.set_yscale("log")
    ax.set_xlabel(r"prefix length $t$ (tokens)")
    ax.set_ylabel(r"median over paths of $\|c_t\|_\infty$")
    ax.set_title("B3: joint LP vs greedy one-step composition")
    finish(ax, integer_x=True)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_queries(rows: Sequence[dict], out_dir, *, name: str = "B4_queries"):
    """Measured distinct queries against T (one line per d), with our accounting bound dashed."""
    fig, ax = paper_figure()
    for k, d in enumerate(sorted({r["d"] for r in rows})):
        color = PALETTE[k % len(PALETTE)]
        sel = sorted((r for r in rows if r["d"] == d), key=lambda r: r["T"])
        ax.plot([r["T"] for r in sel], [r["queries"] for r in sel], "-o", color=color, label=f"$d$ = {d}: measured")
        ax.plot([r["T"] for r in sel], [r["accounting bound"] for r in sel], "--", color=color, label=f"$d$ = {d}: bound")
    grid = sorted({r["T"]: r["all prefixes Σ V^t"] for r in rows}.items())
    ax.plot([g[0] for g in grid], [g[1] for g in grid], ":", color="k", lw=0.8, label=r"all prefixes, $\Sigma_t\,V^t$")
    ax.set_yscale("log")
    ax.set_xlabel(r"horizon $T$ (tokens)")
    ax.set_ylabel("distinct logit queries")
    ax.set_title(r"B4: queries of learn_approx ($V$ = 2)")
    finish(ax, integer_x=True)
    return save_figure(fig, out_dir, name)


_SENSITIVITY_SYMBOL = {"beta": r"$\beta$", "threshold": "threshold", "epochs": "epochs"}


@paper_style
def plot_sensitivity(parameter: str, rows: Sequence[dict], out_dir, *, name: str | None = None):
    """Four panels against one parameter (log x): TV, queries, witnesses, LP infeasibility rate;
    hollow markers where the learner did not accept (two-column figure, 2 × 2 panels)."""
    fig, axes = paper_figure("two", rows=2, cols=2, height=4.0)
    x = np.array([r["value"] for r in rows], dtype=np.float64)
    acc = np.array([bool(r["accepted"]) for r in rows], dtype=bool)
    symbol = _SENSITIVITY_SYMBOL.get(parameter, parameter)
    for ax, key, ylabel, logy, integer in zip(
        axes,
        ["TV", "queries", "witnesses", "infeasibility rate"],
        ["TV(learned, truth)", "distinct logit queries", "witnesses (all levels)", "LP infeasibility rate"],
        [True, False, False, False],
        [False, True, True, False],
    ):
        y = np.array([r[key] for r in rows], dtype=np.float64)
        y = _pos(y) if logy else y
        ax.plot(x, y, "-", lw=0.8, color=PALETTE[0])
        ax.plot(x[acc], y[acc], "o", color=PALETTE[0], label="accepted")
        ax.plot(x[~acc], y[~acc], "o", mfc="none", color=PALETTE[0], label="not accepted")
        if (x > 0).all():
            ax.set_xscale("log")
            if len(set(x)) <= 8:  # label the swept values themselves, not decades
                ax.set_xticks(sorted(set(x)), [f"{v:g}" for v in sorted(set(x))])
                ax.xaxis.set_minor_locator(NullLocator())
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(symbol)
        ax.set_ylabel(ylabel)
        finish(ax, integer_x=parameter == "epochs", integer_y=integer, legend=False)
    fig.suptitle(f"sensitivity of learn_approx to {symbol} (hollow: not accepted)", fontsize=8)
    return save_figure(fig, out_dir, name or f"sensitivity_{parameter}")


@paper_style
def plot_regime_map(rows: Sequence[dict], out_dir, *, name: str = "B5_regime_map"):
    """Two heatmaps over (model, rank budget) × target ε: the fraction of seeds accepted, and the median
    exact TV / ε (annotated; a cell above 1 means the returned sampler misses the target).

    ``rows`` hold "model", "rank", "epsilon", "accepted" and "TV" (one per seed).
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    cols = sorted({(r["epsilon"], r["rank"]) for r in rows})
    acc = np.full((len(models), len(cols)), np.nan)
    ratio = np.full((len(models), len(cols)), np.nan)
    for i, m in enumerate(models):
        for j, (eps, rank) in enumerate(cols):
            cell = [r for r in rows if r["model"] == m and r["epsilon"] == eps and r["rank"] == rank]
            if cell:
                acc[i, j] = np.mean([bool(r["accepted"]) for r in cell])
                ratio[i, j] = np.median([r["TV"] for r in cell]) / eps
    fig, (ax, bx) = paper_figure("two", cols=2, height=0.45 * len(models) + 1.6)
    labels = [f"ε={e:g}\nr={r}" for e, r in cols]
    for axis, data, title, cmap, vmax in ((ax, acc, "accepted (fraction of runs)", "Greens", 1.0),
                                          (bx, ratio, "median TV / ε", "RdYlBu_r", 2.0)):
        im = axis.imshow(data, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
        for i in range(len(models)):
            for j in range(len(cols)):
                if not np.isnan(data[i, j]):
                    axis.text(j, i, f"{data[i, j]:.2g}", ha="center", va="center", fontsize=6)
        axis.set_xticks(range(len(cols)), labels, fontsize=5)
        axis.set_yticks(range(len(models)), [math_symbols(m) for m in models] if axis is ax else [], fontsize=6)
        axis.grid(False)
        axis.set_title(title)
        fig.colorbar(im, ax=axis, fraction=0.05)
    fig.suptitle("B5: where the certificate accepts (rank budget r, target ε)")
    return save_figure(fig, out_dir, name)


@paper_style
def plot_completeness(rows: Sequence[dict], bins: Sequence[dict], out_dir, *, c: float, delta: float,
                      name: str = "B6_completeness"):
    """Acceptance against ε_avg/ε: every run as a tick at 1 (accepted) or 0, one marker per family; the
    acceptance rate per bin of the check (line at each bin's median ratio, annotated with its runs);
    1 − δ dashed, c·ε dotted, and where the binned rate first falls below 1 − δ (arrow).

    ``rows`` hold "family", "ratio" (ε_avg/ε), "accepted" (one per run); ``bins`` hold
    "median ε_avg/ε", "rate", "runs" and "low" (the bin's lower edge).
    """
    fig, ax = paper_figure()
    ratio = np.maximum(np.array([r["ratio"] for r in rows], dtype=np.float64), 1e-6)
    acc = np.array([bool(r["accepted"]) for r in rows], dtype=bool)
    jitter = np.random.default_rng(0).uniform(-0.04, 0.04, len(rows))  # drawing only: ticks would overlap
    for k, family in enumerate(dict.fromkeys(r["family"] for r in rows)):
        sel = np.array([r["family"] == family for r in rows], dtype=bool)
        ax.plot(ratio[sel], acc[sel] + jitter[sel], _MARKERS[k % len(_MARKERS)], ls="none", ms=2.5, alpha=0.5,
                color=PALETTE[(k + 1) % len(PALETTE)], label=math_symbols(family))
    pts = [(max(b["median ε_avg/ε"], 1e-6), b["rate"], b["runs"]) for b in bins]
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=PALETTE[0], ms=3, label="acceptance (binned)")
    for x, y, n in pts:
        ax.annotate(f"{n}", (x, y), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=5)
    ax.axhline(1 - delta, ls="--", color="k", lw=0.8, label=rf"$1-\delta$ = {1 - delta:g}")
    ax.axvline(c, ls=":", color="k", lw=0.8, label=rf"$\varepsilon_{{avg}} = {c:g}\,\varepsilon$ (judged left of it)")
    below = next((x for x, y, _ in pts if y < 1 - delta), None)
    if below is not None:
        ax.annotate("falls off", (below, 1 - delta), xytext=(below, 0.5), ha="center", fontsize=6,
                    arrowprops={"arrowstyle": "->", "lw": 0.6})
    ax.set_xscale("log")
    ax.set_ylim(-0.1, 1.12)
    ax.set_xlabel(r"$\varepsilon_{avg} / \varepsilon$ (sampled $\varepsilon_{avg}$ at the learner's rank)")
    ax.set_ylabel("accepted (runs jittered; binned rate)")
    ax.set_title("B6: completeness of the certificate")
    finish(ax)
    return save_figure(fig, out_dir, name)
