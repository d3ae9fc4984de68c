"""Figures of the learners: TV against a swept parameter for several learners (T7 style)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from ._figures import save_figure

__all__ = ["plot_tv_curves", "plot_query_scaling"]


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

    ``reference`` draws a horizontal line (e.g. the TV of the trivial model). Writes
    ``<name>.png`` and ``<name>.pdf`` to ``out_dir`` and returns the two paths.
    """
    fig = Figure(figsize=(5.0, 3.4))
    ax = fig.add_subplot()
    floor = 1e-17
    for label, (xs, tvs) in curves.items():
        ax.plot(list(xs), [max(float(v), floor) for v in tvs], marker="o", label=label)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label=reference_label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("TV to the true model")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, name)


def plot_query_scaling(series: Mapping[str, tuple[Sequence[float], Sequence[float], float]], out_dir, *, name: str):
    """Log-log plot of queries against each swept parameter.

    ``series[label] = (parameter values, query counts, fitted exponent)``; one panel per label, the
    exponent printed in the panel's title. Writes ``<name>.png``/``.pdf``; returns the paths.
    """
    fig = Figure(figsize=(3.2 * len(series), 3.0))
    for i, (label, (xs, qs, slope)) in enumerate(series.items()):
        ax = fig.add_subplot(1, len(series), i + 1)
        ax.loglog(list(xs), list(qs), marker="o")
        ax.minorticks_off()
        ax.set_xticks(list(xs), [str(x) for x in xs])
        ax.set_xlabel(label)
        if i == 0:
            ax.set_ylabel("logit queries")
        ax.set_title(f"queries ∝ {label}^{slope:.2f}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_dir, name)
