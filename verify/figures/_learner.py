"""Figures of the learners: TV against a swept parameter for several learners (T7 style), and the
query count against d, V and T (T8). Drawn in the paper style of :mod:`logitrank.verify.figures._style`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from matplotlib.ticker import FuncFormatter, LogLocator

from ._common import save_figure
from ._style import PALETTE, finish, math_symbols, paper_figure, paper_style

__all__ = ["plot_query_scaling", "plot_tv_curves"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _symbol(label: str) -> str:
    """A one-letter parameter name (d, V, T, n) as a mathtext symbol; other labels unchanged."""
    return f"${label}$" if len(label) == 1 and label.isalpha() else label


@paper_style
def plot_tv_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    out_dir,
    *,
    name: str,
    xlabel: str,
    title: str = "",
    reference: float | None = None,
    reference_label: str = "trivial model",
):
    """One line per learner: ``curves[label] = (x values, TV values)``; log-scaled TV axis.

    ``reference`` draws a horizontal line (e.g. the TV of the trivial model). Values below 1e-17 are
    drawn at 1e-17. Writes ``<name>.png`` and ``<name>.pdf`` to ``out_dir`` and returns the two paths.
    """
    fig, ax = paper_figure()
    floor = 1e-17
    integer_x = True
    for i, (label, (xs, tvs)) in enumerate(curves.items()):
        xs = list(xs)
        integer_x &= all(float(x).is_integer() for x in xs)
        ax.plot(xs, [max(float(v), floor) for v in tvs], marker=_MARKERS[i % len(_MARKERS)],
                color=PALETTE[i % len(PALETTE)], label=math_symbols(label))
    if reference is not None:
        ax.axhline(reference, color="k", linestyle="--", linewidth=0.8, label=reference_label)
    ax.set_yscale("log")
    ax.set_xlabel(re.sub(r" ([A-Za-z])$", r" $\1$", math_symbols(xlabel)))  # "parity bits n" → "parity bits $n$"
    ax.set_ylabel("TV to the true model")
    if title:
        ax.set_title(title)
    finish(ax, integer_x=integer_x)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_query_scaling(series: Mapping[str, tuple[Sequence[float], Sequence[float], float]], out_dir, *, name: str):
    """Log-log plot of queries against each swept parameter.

    ``series[label] = (parameter values, query counts, fitted exponent)``; one panel per label, the
    exponent printed in the panel's title (one-column for one panel, two-column otherwise).
    Writes ``<name>.png``/``.pdf``; returns the paths.
    """
    n = max(len(series), 1)
    fig, axes = paper_figure("one" if n == 1 else "two", cols=n)
    axes = [axes] if n == 1 else list(axes)
    for i, (ax, (label, (xs, qs, slope))) in enumerate(zip(axes, series.items())):
        ax.loglog(list(xs), list(qs), marker="o", color=PALETTE[0])
        ax.minorticks_off()
        ax.set_xticks(list(xs), [f"{x:g}" for x in xs])
        # a range of a decade or two: label 1, 2, 5 × 10^k in plain numbers
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(_symbol(label))
        if i == 0:
            ax.set_ylabel("logit queries")
        if _symbol(label) != label:
            ax.set_title(rf"queries $\propto {label}^{{{slope:.2f}}}$")
        else:
            ax.set_title(f"queries ∝ ({label})" + rf"$^{{{slope:.2f}}}$")
        finish(ax)
    return save_figure(fig, out_dir, name)
