"""Figures of the real-model experiments: LinGen's per-position KL (paper A, Fig 5 / 1b) and
quantities over training checkpoints (Fig 3, and X5's comparison with held-out loss).

Drawn like :mod:`logitrank.verify.figures._common` (standalone Agg figures in the paper style of
:mod:`logitrank.verify.figures._style`, PNG + PDF, paths returned).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ._common import as_array, save_figure
from ._style import PALETTE, finish, math_symbols, paper_figure, paper_style

__all__ = ["plot_alpha_vs_n", "plot_nearest_kinds", "plot_over_training", "plot_position_kl", "plot_surrogate"]



@paper_style
def plot_position_kl(curves: Mapping[str, object], out_dir, *, name: str = "lingen_kl",
                     title: str = "per-position KL(generator ‖ model)"):
    """Mean KL at each generated position, one line per generator; the legend shows the total (Fig 5).

    Parameters
    ----------
    curves : mapping label → (m,) mean KL per position (nats)
    out_dir : path

    Returns
    -------
    (png path, pdf path)

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     png, _ = plot_position_kl({"LinGen": [0.1, 0.2], "baseline": [0.3, 0.5]}, d)
    ...     png.exists()
    True
    """
    if not curves:
        raise ValueError("curves must hold at least one curve; got an empty mapping")
    fig, ax = paper_figure()
    floor = 1e-4  # KL below this (e.g. an exact first token) is drawn at the floor of the log axis
    markers = iter(("o", "s", "^", "D", "v", "P", "X"))
    for k, (label, values) in enumerate(curves.items()):
        kl = as_array(f"curves[{label!r}]", values)
        marker = "*" if label.lower().startswith("lingen") else next(markers, "o")
        ax.plot(np.arange(1, len(kl) + 1), np.maximum(kl, floor), marker=marker, ms=5 if marker == "*" else 3,
                color=PALETTE[k % len(PALETTE)], label=f"{label} (total {kl.sum():.2f})")
    ax.set_xlabel(r"token position $t$")
    ax.set_ylabel(f"KL (nats; < {floor:g} drawn at {floor:g})")
    ax.set_yscale("log")
    ax.set_title(math_symbols(title))
    finish(ax, integer_x=True)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_over_training(steps: Sequence[int], curves: Mapping[str, object], out_dir, *,
                       loss: Sequence[float] | None = None, name: str = "over_training",
                       ylabel: str = "average KL to rank r (nats)", title: str = "over training"):
    """Quantities against training step (log x axis; step 0 drawn at ½), held-out loss on a twin axis.

    Parameters
    ----------
    steps : (p,) ints
    curves : mapping label → (p,) values
    out_dir : path
    loss : (p,) held-out loss, optional (dashed, right axis)

    Returns
    -------
    (png path, pdf path)

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     png, _ = plot_over_training([0, 10, 100], {"r = 5": [0.1, 0.3, 0.2]}, d, loss=[5.5, 3.0, 2.0])
    ...     png.exists()
    True
    """
    x = np.maximum(as_array("steps", steps), 0.5)
    if not curves:
        raise ValueError("curves must hold at least one curve; got an empty mapping")
    fig, ax = paper_figure()
    for label, values in curves.items():
        y = as_array(f"curves[{label!r}]", values)
        if y.shape != x.shape:
            raise ValueError(f"curves[{label!r}] must have one value per step ({len(x)}); got {len(y)}")
        ax.plot(x, y, "o-", label=math_symbols(label))
    ax.set_xscale("log")
    ax.set_xlabel(r"training step (0 drawn at $\frac{1}{2}$)")
    ax.set_ylabel(math_symbols(ylabel))
    ax.set_title(math_symbols(title))
    if loss is not None:
        ax2 = ax.twinx()
        ax2.grid(False)
        ax2.spines["right"].set_visible(True)
        ax2.plot(x, as_array("loss", loss), "k--", lw=0.9)
        ax2.set_ylabel("held-out loss (nats/token), dashed")
        ax.plot([], [], "k--", lw=0.9, label="held-out loss (right axis)")  # one legend for both axes
    finish(ax)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_surrogate(runs: Sequence[Mapping], truncation: Mapping[int, Mapping], out_dir, *, name: str = "X4_surrogate",
                   title: str = "ISAN surrogate of a restricted LM"):
    """X4: TV to the restricted model against learned rank d (left) and queries spent (right).

    Parameters
    ----------
    runs : sequence of mappings with keys "learner", "d", "queries", "TV"
    truncation : mapping r → {"TV": float}, the rank-r truncation comparator (drawn as a line)
    out_dir : path

    Returns
    -------
    (png path, pdf path)

    Examples
    --------
    >>> import tempfile
    >>> runs = [{"learner": "learn_isan", "d": 2, "queries": 40, "TV": 0.2},
    ...         {"learner": "learn_approx", "d": 1, "queries": 90, "TV": 0.3}]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     png, _ = plot_surrogate(runs, {1: {"TV": 0.25}, 2: {"TV": 0.1}}, d)
    ...     png.exists()
    True
    """
    fig, (left, right) = paper_figure("two", cols=2)
    floor = 1e-16
    if truncation:
        r = sorted(truncation)
        left.plot(r, [max(truncation[i]["TV"], floor) for i in r], "k--", lw=0.9, label="rank-$r$ truncation")
    for k, (learner, marker) in enumerate((("learn_isan", "o"), ("learn_approx", "s"))):
        pts = [run for run in runs if run["learner"] == learner]
        if not pts:
            continue
        style = {"marker": marker, "ls": "none", "color": PALETTE[k], "label": learner}
        left.plot([p["d"] for p in pts], [max(p["TV"], floor) for p in pts], **style)
        right.plot([p["queries"] for p in pts], [max(p["TV"], floor) for p in pts], **style)
    for ax, xlabel in ((left, "learned rank $d$ (truncation: $r$)"), (right, "logit queries")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("TV to the restricted model")
    right.set_xscale("log")
    right.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # a decade or so: 1-2-5 labels
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    right.xaxis.set_minor_formatter(NullFormatter())
    finish(left, integer_x=True)
    finish(right)
    fig.suptitle(math_symbols(title), fontsize=8)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_nearest_kinds(L, kinds: Sequence[int], labels: Sequence[str], same: float, chance: float, out_dir, *,
                       name: str = "E9_nearest_kinds", title: str = ""):
    """E9: the logit rows of histories of two kinds of text, projected on their top two principal
    directions (one colour per kind), with the same-kind nearest-neighbour rate against chance.

    ``L`` is the (n, M) logit matrix (rows = histories), ``kinds`` (n,) ints indexing ``labels``.
    """
    X = np.asarray(L, dtype=np.float64)
    X = X - X.mean(axis=0, keepdims=True)
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    P = U[:, :2] * S[:2]  # (n, 2)
    kinds = np.asarray(kinds)
    fig, ax = paper_figure("one")
    for j, label in enumerate(labels):
        keep = kinds == j
        ax.plot(P[keep, 0], P[keep, 1], "o", ms=2.5, alpha=0.7, color=PALETTE[j % len(PALETTE)], label=label)
    ax.set_xlabel("principal direction 1")
    ax.set_ylabel("principal direction 2")
    ax.set_title(math_symbols(title or f"same-kind nearest neighbour {same:.0%} (chance {chance:.0%})"))
    finish(ax)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_alpha_vs_n(points: Sequence, fit, out_dir, *, band: tuple[float, float] = (0.5, 0.65),
                    others: Mapping[str, Sequence] | None = None, paper_n: float = 1e4, name: str = "alpha_vs_n",
                    title: str = "α against N"):
    """α of L(H, F) against |H| = |F| = N: both indexings, the paper's band, a saturating fit and its band.

    Parameters
    ----------
    points : TrendPoints (:mod:`logitrank.verify.claims._alpha_trend`) with n, alpha, alpha_original, dtype,
        dtype_error; a point not in float32 is drawn hollow with ±dtype_error
    fit : a SaturatingFit or None; drawn from the smallest N to ``paper_n`` with its pointwise
        bootstrap band and α∞'s interval at the right edge
    out_dir : path
    others : mapping label → TrendPoints of further curves (e.g. another cut seed), drawn in the paper
        indexing only, dashed with hollow markers

    Returns
    -------
    (png path, pdf path)
    """
    pts = sorted(points, key=lambda p: p.n)
    if not pts:
        raise ValueError("points must hold at least one point; got none")
    fig, ax = paper_figure()
    n = np.array([p.n for p in pts], dtype=float)
    ax.axhspan(*band, color=PALETTE[2], alpha=0.15, lw=0, label=f"paper's band ({band[0]:g}, {band[1]:g}]")
    if fit is not None:
        grid = np.geomspace(n.min(), paper_n, 200)
        lo, hi = fit.band(grid)
        ax.fill_between(grid, lo, hi, color="0.5", alpha=0.25, lw=0)
        lo_inf, hi_inf = fit.interval
        ax.plot(grid, fit.predict(grid), "k-", lw=0.9,
                label=rf"$\alpha_\infty - c\,N^{{-\beta}}$: $\alpha_\infty$ = {fit.alpha_inf:.3f} "
                f"[{lo_inf:.3f}, {hi_inf:.3f}], {fit.level:.0%} band")
        ax.axvline(paper_n, color="0.4", ls=":", lw=0.8)
        ax.annotate("paper's N", (paper_n, band[0]), xytext=(-3, 3), textcoords="offset points", ha="right",
                    va="bottom", fontsize=6, color="0.3")
    full = [p.dtype == "float32" for p in pts]
    for idx, (key, colour, label) in enumerate((("alpha", PALETTE[0], "paper indexing (judged)"),
                                                 ("alpha_original", PALETTE[1], "original indexing"))):
        y = np.array([getattr(p, key) for p in pts], dtype=float)
        ax.plot(n, y, "-", color=colour, lw=0.8, alpha=0.6)
        ax.plot(n[full], y[full], "o", color=colour, label=label)
        other = ~np.array(full)
        if other.any():
            err = np.array([p.dtype_error for p in pts])[other]
            ax.errorbar(n[other], y[other], yerr=err, fmt="o", mfc="white", color=colour, capsize=2,
                        label=f"{pts[int(np.flatnonzero(other)[0])].dtype} (±measured dtype error)" if idx == 0 else None)
    for k, (label, curve) in enumerate((others or {}).items()):
        cp = sorted(curve, key=lambda p: p.n)
        ax.plot([p.n for p in cp], [p.alpha for p in cp], "--", marker="s", mfc="white", lw=0.8, ms=3,
                color=PALETTE[(3 + k) % len(PALETTE)], label=math_symbols(label))
    ax.set_xscale("log")
    ax.set_xlabel(r"$N = |H| = |F|$")
    ax.set_ylabel(math_symbols("α (power-law exponent)"))
    ax.set_title(math_symbols(title))
    finish(ax)
    return save_figure(fig, out_dir, name)
