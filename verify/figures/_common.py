"""Figures in the style of paper A: singular values (Fig 2), KL to rank r (Fig 1a), principal angles (Fig 4).

Each function draws on a standalone :class:`matplotlib.figure.Figure` rendered by the Agg canvas
(no pyplot state, nothing is shown), writes ``<name>.png`` and ``<name>.pdf`` into ``out_dir`` and
returns the two paths. The data come from :mod:`logitrank.algorithms` (``downsized_spectra``,
``fit_power_law``, ``avg_kl_to_rank``, ``principal_angles``); the functions only draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from logitrank._io import atomic_path
from logitrank.algorithms import PowerLawFit

from ._style import finish, math_symbols, paper_figure, paper_style

__all__ = ["plot_kl_to_rank", "plot_principal_angles", "plot_singular_values"]


def as_array(name: str, values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    return arr


def save_figure(fig: Figure, out_dir, name: str) -> tuple[Path, Path]:
    """Write ``<name>.png`` and ``<name>.pdf`` (reproducible: no creation date) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attach the Agg canvas: rendering never touches a GUI backend
    paths = (out / f"{name}.png", out / f"{name}.pdf")
    for p in paths:  # through a unique temporary file and an atomic rename: concurrent runs never tear a figure
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=p.suffix[1:], dpi=200, bbox_inches="tight",
                        metadata=None if p.suffix == ".png" else {"CreationDate": None})
    return paths


@paper_style
def plot_singular_values(
    spectra: Mapping[int, object],
    out_dir,
    *,
    fit: PowerLawFit | None = None,
    name: str = "singular_values",
    title: str = "",
    labels: Mapping[int, str] | None = None,
) -> tuple[Path, Path]:
    """Singular values against their index on log-log axes, one line per downsizing factor (Figure 2).

    Parameters
    ----------
    spectra : mapping factor → (p,) array or tensor
        E.g. :func:`logitrank.algorithms.downsized_spectra`; factor 1 is the full matrix, i the matrix with
        about 1/i of the entries. Zero values are not drawn (log axes).
    out_dir : path
    fit : PowerLawFit, optional
        Drawn as a dashed curve with α in the title (fit of the full spectrum).
    labels : mapping factor → legend label, optional
        Instead of "full" / "downsized i×" (e.g. spectra of the same matrix with other columns).
    name, title : str

    Returns
    -------
    (png path, pdf path)

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from logitrank.algorithms import fit_power_law
    >>> s = np.arange(1, 201) ** -0.6
    >>> with tempfile.TemporaryDirectory() as d:
    ...     png, pdf = plot_singular_values({1: s, 4: s[:100]}, d, fit=fit_power_law(s))
    ...     png.name, pdf.stat().st_size > 0
    ('singular_values.png', True)
    """
    if not spectra:
        raise ValueError("spectra must hold at least one spectrum; got an empty mapping")
    fig, ax = paper_figure()
    for factor, values in sorted(spectra.items()):
        s = as_array(f"spectra[{factor}]", values)
        i = np.arange(1, len(s) + 1)
        keep = s > 0
        label = labels[factor] if labels else ("full" if factor == 1 else f"downsized {factor}×")
        ax.loglog(i[keep], s[keep], label=label)
    if fit is not None:
        ax.loglog(fit.position, fit.fitted, "k--", lw=0.9, label=rf"fit: $\alpha$ = {fit.alpha:.3f}, $R^2$ = {fit.r_squared:.3f}")
    ax.set_xlabel(r"index $i$")
    ax.set_ylabel(r"singular value $\sigma_i$ (normalised)")
    ax.set_title(math_symbols(title) or (rf"singular values, $\alpha \approx$ {fit.alpha:.3f}" if fit is not None else "singular values"))
    finish(ax)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_kl_to_rank(
    ranks: Sequence[int],
    curves: Mapping[str, object],
    out_dir,
    *,
    baseline: float | Mapping[str, float] | None = None,
    name: str = "kl_to_rank",
    title: str = "average KL to the best rank-r approximation",
    slope: float | None = None,
    r_squared: float | None = None,
) -> tuple[Path, Path]:
    """Average KL (Definition 3.1) against rank on log-log axes, one line per matrix (Figure 1a).

    Parameters
    ----------
    ranks : (p,) ints
    curves : mapping label → (p,) array of average KL, e.g. from :func:`logitrank.algorithms.avg_kl_to_rank`
    out_dir : path
    baseline : float or mapping label → float, optional
        The rank-1 baseline of Appendix A.1.3, drawn as dashed horizontal line(s).
    slope, r_squared : float, optional
        The fitted slope of log KL against log r (and its R²), printed under the title.

    Returns
    -------
    (png path, pdf path)

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     png, _ = plot_kl_to_rank([1, 2, 4], {"n = 100": [0.3, 0.1, 0.02]}, d, baseline=0.8)
    ...     png.exists()
    True
    """
    r = as_array("ranks", ranks)
    if not curves:
        raise ValueError("curves must hold at least one curve; got an empty mapping")
    fig, ax = paper_figure()
    colors = {}
    for label, values in curves.items():
        kl = as_array(f"curves[{label!r}]", values)
        if kl.shape != r.shape:
            raise ValueError(f"curves[{label!r}] must have one value per rank ({len(r)}); got {len(kl)}")
        keep = (r > 0) & (kl > 0)
        (line,) = ax.loglog(r[keep], kl[keep], "o-", label=label)
        colors[label] = line.get_color()
    if baseline is not None:
        items = baseline.items() if isinstance(baseline, Mapping) else [("rank-1 baseline", baseline)]
        for label, value in items:
            ax.axhline(float(value), ls="--", lw=1, color=colors.get(label, "k"), label=f"{label}: rank-1 baseline" if label in colors else label)
    ax.set_xlabel(r"rank $r$")
    ax.set_ylabel("average KL (nats)")
    title = math_symbols(title)
    if slope is not None:
        fitted = f"fitted slope of log KL vs log $r$: ${slope:.2f}$" + (f" ($R^2$ = {r_squared:.3f})" if r_squared is not None else "")
        title = f"{title}\n{fitted}" if title else fitted
    ax.set_title(title)
    finish(ax)
    return save_figure(fig, out_dir, name)


@paper_style
def plot_principal_angles(
    angles: Mapping[int, object],
    out_dir,
    *,
    random: Mapping[int, object] | None = None,
    name: str = "principal_angles",
    title: str = "cosines of principal angles",
) -> tuple[Path, Path]:
    """Cosines of principal angles against their index, one line per rank r (Figure 4).

    Parameters
    ----------
    angles : mapping r → (r,) angles in radians (increasing), e.g. :func:`logitrank.algorithms.principal_angles`
    out_dir : path
    random : mapping r → (r,) angles, optional
        The random-subspace baseline (:func:`logitrank.algorithms.random_subspace_angles`), dashed, same colour.

    Returns
    -------
    (png path, pdf path)

    Examples
    --------
    >>> import tempfile
    >>> from logitrank.algorithms import random_subspace_angles
    >>> with tempfile.TemporaryDirectory() as d:
    ...     png, _ = plot_principal_angles({3: [0.0, 0.1, 0.5]}, d, random={3: random_subspace_angles(50, 3, rng=0)})
    ...     png.exists()
    True
    """
    if not angles:
        raise ValueError("angles must hold at least one rank; got an empty mapping")
    fig, ax = paper_figure()
    for r, values in sorted(angles.items()):
        th = as_array(f"angles[{r}]", values)
        (line,) = ax.plot(np.arange(1, len(th) + 1), np.cos(th), label=f"$r$ = {r}")
        if random is not None and r in random:
            base = as_array(f"random[{r}]", random[r])
            ax.plot(np.arange(1, len(base) + 1), np.cos(base), "--", lw=1, color=line.get_color())
    ax.set_xlabel(r"index $i$ of the principal angle")
    ax.set_ylabel(r"$\cos\,\theta_i$")
    ax.set_ylim(-0.02, 1.02)
    if random:
        ax.plot([], [], "k--", lw=1, label="random subspaces")  # legend key for the dashed baselines
    ax.set_title(math_symbols(title))
    finish(ax, integer_x=True)
    return save_figure(fig, out_dir, name)
