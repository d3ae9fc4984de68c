"""Figures of the learners: TV against a swept parameter for several learners (T7 style)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from ._figures import _save

__all__ = ["plot_tv_curves"]


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
    return _save(fig, out_dir, name)
