"""Issue 35, item 2: sweep plots that cannot mislead.

An axis over more than two decades is logarithmic; a zero on a log axis is drawn apart at its own "0"
tick and never joined to the line; bars only where a point has two seeds or more, and the title says
what they are; labels from the units table; heatmap text in the colour that reads on its cell; a
title that states a filter does not repeat it.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from logitrank.verify.figures import _sweep as _plot
from logitrank.verify.figures import axis_label, plot_sweep


@pytest.fixture
def captured(monkeypatch):
    figures = []

    def save(fig, out_dir, name):
        figures.append((fig, name))
        return Path(out_dir) / f"{name}.png", Path(out_dir) / f"{name}.pdf"

    monkeypatch.setattr(_plot, "save_figure", save)
    return figures


def _frame(rows, config=("xi", "learner", "d"), metrics=("tv_truth",)):
    """A load()-like frame from dicts (status "done" unless given)."""
    df = pd.DataFrame.from_records([{"sweep": "g", "status": "done", **r} for r in rows])
    df["cell"] = df[list(config)].astype(str).agg("-".join, axis=1)
    df.attrs.update(config_columns=list(config), metric_columns=list(metrics))
    return df


def _xi_rows(seeds=3, zero_tv=False):
    """TV against ξ ∈ {0, 1e-6, 1e-3} for two learners at d = 2 (TV ≈ ξ, float noise at ξ = 0)."""
    rows = []
    for learner in ("exact", "approx"):
        for xi in (0.0, 1e-6, 1e-3):
            for s in range(seeds):
                tv = 0.0 if (zero_tv and xi == 0 and s == 0) else (xi or 1e-16) * (1 + 0.1 * s)
                rows.append({"xi": xi, "learner": learner, "d": 2, "tv_truth": tv})
    return rows


def _drawn_lines(ax):
    """The joined data lines of an axes (linestyle drawn, two or more x values; not the vertical break line)."""
    return [ln for ln in ax.lines if ln.get_linestyle() not in ("None", "none", "", " ")
            and len(set(np.asarray(ln.get_xdata(), dtype=float))) > 1]


def test_zero_on_a_log_x_axis_is_drawn_apart_and_never_joined(captured, tmp_path):
    plot_sweep(_frame(_xi_rows()), x="xi", y="tv_truth", hue="learner", where={"d": 2}, out_dir=tmp_path)
    fig, _ = captured[-1]
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"  # 0, 1e-6, 1e-3: a linear axis would join 0 to 1e-3 across the decades
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "0" and len(labels) == 3
    zero_at = ax.get_xticks()[0]
    assert 0 < zero_at < 1e-6
    for line in _drawn_lines(ax):
        assert min(line.get_xdata()) >= 1e-6, "a line joins the zero slot to a positive ξ"
    assert ax.get_xlabel() == "oracle noise $\\xi$" and ax.get_ylabel() == "TV to the truth"
    assert "0 drawn apart" in fig._suptitle.get_text()


def test_zero_on_a_log_y_axis_gets_its_own_tick(captured, tmp_path):
    plot_sweep(_frame(_xi_rows(zero_tv=True)), x="xi", y="tv_truth", hue="learner", where={"d": 2}, out_dir=tmp_path)
    ax = captured[-1][0].axes[0]
    assert ax.get_yscale() == "log"
    assert "0" in [t.get_text() for t in ax.get_yticklabels()]
    low = ax.get_ylim()[0]
    assert low > 0  # the zero slot is a place on the log axis, not a symlog stretch through 0


def test_a_log_axis_labels_at_most_a_few_decades(captured, tmp_path):
    rows = [{"xi": 0.0, "learner": "exact", "d": d, "tv_truth": 10.0 ** -(2 * d), "seed": s}
            for d in range(1, 10) for s in range(2)]
    plot_sweep(_frame(rows), x="d", y="tv_truth", out_dir=tmp_path)
    ax = captured[-1][0].axes[0]
    assert ax.get_yscale() == "log"  # 1e-18 … 1e-2: sixteen decades
    assert len(ax.get_yticks()) <= _plot.MAX_DECADE_TICKS + 1


def test_more_than_two_decades_is_log_else_linear():
    assert _plot._log_scale([1, 10, 1000], axis="x") == "log"
    assert _plot._log_scale([0.0, 1e-6, 1e-3], axis="x") == "log"  # zeros do not decide; drawn apart
    assert _plot._log_scale([2, 3, 4, 6], axis="x") == "linear"
    assert _plot._log_scale([-1.0, 1e-3, 1.0], axis="y") == "linear"  # a negative value: no log axis


def test_bars_only_with_two_seeds_and_the_title_says_so(captured, tmp_path):
    plot_sweep(_frame(_xi_rows(seeds=1)), x="xi", y="tv_truth", hue="learner", where={"d": 2}, out_dir=tmp_path)
    fig, _ = captured[-1]
    ax = fig.axes[0]
    assert not ax.containers and not ax.collections  # no error bar drawn
    title = fig._suptitle.get_text()
    assert "one seed per point, no bars" in title and "bars [" not in title
    plot_sweep(_frame(_xi_rows(seeds=3)), x="xi", y="tv_truth", hue="learner", where={"d": 2}, out_dir=tmp_path)
    fig, _ = captured[-1]
    assert fig.axes[0].containers and "bars [min, max]" in fig._suptitle.get_text()


def test_a_title_stating_the_filter_does_not_repeat_it(captured, tmp_path):
    plot_sweep(_frame(_xi_rows()), x="d", y="tv_truth", hue="learner", where={"xi": 0.0}, out_dir=tmp_path,
               title="TV vs d, ξ = 0")
    first = captured[-1][0]._suptitle.get_text().splitlines()[0]
    assert first == "TV vs d, $\\xi$ = 0" and "xi=0" not in first
    plot_sweep(_frame(_xi_rows()), x="d", y="tv_truth", hue="learner", where={"xi": 0.0}, out_dir=tmp_path)
    assert captured[-1][0]._suptitle.get_text().splitlines()[0] == "g; $\\xi$ = 0"  # a default title gets it once


def test_units_table():
    assert axis_label("tv_truth") == "TV to the truth" and axis_label("tv_oracle") == "TV to the oracle"
    assert axis_label("queries") == "queries" and axis_label("seconds") == "seconds per row"
    assert axis_label("some_metric") == "some metric"


def _luminance(rgb) -> float:
    def lin(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_heatmap_text_reads_on_its_cell_and_the_colour_bar_spans_the_values(captured, tmp_path):
    rows = [{"xi": 1e-3, "learner": "approx", "d": d, "V": V, "tv_truth": 1e-3 * d * V ** 2, "seed": s}
            for d in (2, 4, 8) for V in (2, 4, 8) for s in range(2)]
    df = _frame(rows, config=("xi", "learner", "d", "V"))
    plot_sweep(df, x="d", y="tv_truth", hue="V", heatmap=True, out_dir=tmp_path)
    fig, _ = captured[-1]
    ax = fig.axes[0]
    mesh = ax.collections[0]
    fig.canvas.draw()
    colours = mesh.get_facecolors()
    texts = [t for t in ax.texts if t.get_text()]
    assert len(texts) == 9
    for text, face in zip(texts, colours):
        cell, ink = _luminance(face[:3]), _luminance(to_rgb(text.get_color()))
        contrast = (max(cell, ink) + 0.05) / (min(cell, ink) + 0.05)
        assert contrast >= 3, (text.get_text(), face, text.get_color())
    values = df.groupby(["V", "d"])["tv_truth"].median()
    norm = mesh.norm
    assert norm.vmin <= values.min() and norm.vmax >= values.max()  # no value beyond the colour scale
    assert "TV to the truth" in fig.axes[1].get_ylabel()


def test_forced_log_scale_with_negative_values_is_refused(tmp_path):
    rows = [{"xi": 0.0, "learner": "exact", "d": d, "tv_truth": v} for d, v in ((1, -1.0), (2, 1.0))]
    with pytest.raises(ValueError, match=r"yscale='log' cannot show the negative values of tv_truth"):
        plot_sweep(_frame(rows), x="d", y="tv_truth", yscale="log", out_dir=tmp_path)


def test_a_redrawn_figure_is_written(tmp_path):
    png, pdf = plot_sweep(_frame(_xi_rows()), x="xi", y="tv_truth", hue="learner", where={"d": 2}, out_dir=tmp_path)
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.stat().st_size > 0
    assert np.isfinite(png.stat().st_size)
