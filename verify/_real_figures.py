"""Figures of the real-model experiments: LinGen's per-position KL (paper A, Fig 5 / 1b) and
quantities over training checkpoints (Fig 3, and X5's comparison with held-out loss).

Drawn like :mod:`logitrank.verify._figures` (standalone Agg figures, PNG + PDF, paths returned).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ._figures import as_array, save_figure

__all__ = ["plot_over_training", "plot_position_kl", "plot_surrogate"]


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
    fig = Figure(figsize=(5.2, 3.8))
    ax = fig.add_subplot()
    floor = 1e-4  # KL below this (e.g. an exact first token) is drawn at the floor of the log axis
    for label, values in curves.items():
        kl = as_array(f"curves[{label!r}]", values)
        marker = "*" if label.lower().startswith("lingen") else "o"
        ax.plot(np.arange(1, len(kl) + 1), np.maximum(kl, floor), marker=marker, ms=5, lw=1.3,
                label=f"{label} (total {kl.sum():.2f})")
    ax.set_xlabel("token position t")
    ax.set_ylabel(f"KL (nats; values < {floor:g} drawn at {floor:g})")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, name)


def plot_over_training(steps: Sequence[int], curves: Mapping[str, object], out_dir, *,
                       loss: Sequence[float] | None = None, name: str = "over_training",
                       ylabel: str = "average KL to rank r", title: str = "over training"):
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
    fig = Figure(figsize=(5.2, 3.8))
    ax = fig.add_subplot()
    for label, values in curves.items():
        y = as_array(f"curves[{label!r}]", values)
        if y.shape != x.shape:
            raise ValueError(f"curves[{label!r}] must have one value per step ({len(x)}); got {len(y)}")
        ax.plot(x, y, "o-", ms=3, lw=1.3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training step (0 drawn at ½)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    if loss is not None:
        ax2 = ax.twinx()
        ax2.plot(x, as_array("loss", loss), "k--", lw=1, label="held-out loss")
        ax2.set_ylabel("held-out loss (nats/token), dashed")
    return save_figure(fig, out_dir, name)


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
    fig = Figure(figsize=(9.0, 3.6))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    floor = 1e-16
    if truncation:
        r = sorted(truncation)
        left.plot(r, [max(truncation[i]["TV"], floor) for i in r], "k--", lw=1.2, label="rank-r truncation")
    for learner, marker in (("learn_isan", "o"), ("learn_approx", "s")):
        pts = [run for run in runs if run["learner"] == learner]
        if not pts:
            continue
        left.plot([p["d"] for p in pts], [max(p["TV"], floor) for p in pts], marker, ls="none", label=learner)
        right.plot([p["queries"] for p in pts], [max(p["TV"], floor) for p in pts], marker, ls="none", label=learner)
    for ax, xlabel in ((left, "learned rank d (truncation: r)"), (right, "logit queries")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7)
    left.set_ylabel("TV to the restricted model")
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_dir, name)
