"""Every figure of logitrank is drawn in the paper style of verify/_style.py (issue 16, item 2).

Checked here: every public plot function is wrapped by ``paper_style``; each draws a one- or
two-column figure with 8-pt titles; legends cover no data (or sit outside the axes); integer axes get
integer ticks; plain symbols become mathtext; E3's figure prints the fitted slope; global rcParams
are untouched.
"""

import inspect

import matplotlib as mpl
import numpy as np
import pytest

from logitrank.verify.claims.checks import _real_structure_claims
from logitrank.verify.figures import _approx as _approx_figures
from logitrank.verify.figures import _common as _figures
from logitrank.verify.figures import _learner as _learner_figures
from logitrank.verify.figures import _real as _real_figures
from logitrank.verify.figures import _sweep as sweep_plot
from logitrank.verify.figures import _theory as _theory_figures
from logitrank.verify.figures._style import (
    ONE_COLUMN,
    PAPER_RC,
    TWO_COLUMN,
    _covered,
    finish,
    math_symbols,
    paper_figure,
    paper_style,
)

MODULES = [_figures, _approx_figures, _real_figures, _theory_figures, _learner_figures, sweep_plot]
_WRAPPER_CODE = paper_style(lambda: None).__code__


def _public_plot_functions():
    for module in MODULES:
        for name in module.__all__:
            fn = getattr(module, name)
            if name.startswith("plot_") and inspect.isfunction(fn):
                yield f"{module.__name__}.{name}", fn
    yield "E8 _plot_pairs", _real_structure_claims._plot_pairs


@pytest.mark.parametrize("qualname, fn", list(_public_plot_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_plot_function_is_wrapped_by_paper_style(qualname, fn):
    assert hasattr(fn, "__wrapped__"), f"{qualname} is not decorated"
    assert fn.__code__ is _WRAPPER_CODE, f"{qualname} is decorated by something other than paper_style"


def test_the_plot_function_list_is_complete():
    names = {q.rsplit(".", 1)[-1] for q, _ in _public_plot_functions()}
    assert {"plot_singular_values", "plot_tv_vs_error", "plot_sensitivity", "plot_over_training", "plot_surrogate",
            "plot_kl_vs_bound", "plot_tv_curves", "plot_query_scaling", "plot_sweep"} <= names


rng = np.random.default_rng(0)
_steps = [0, 10, 100, 1000]
CALLS = {
    "singular_values": (_figures, lambda d: _figures.plot_singular_values({1: np.arange(1, 50) ** -0.6}, d), ONE_COLUMN),
    "kl_to_rank": (_figures, lambda d: _figures.plot_kl_to_rank([1, 2, 4, 8], {"full": [0.5, 0.3, 0.1, 0.05]}, d,
                                                                baseline=0.9, slope=-0.81, r_squared=0.99), ONE_COLUMN),
    "principal_angles": (_figures, lambda d: _figures.plot_principal_angles({3: [0.1, 0.5, 1.0]}, d,
                                                                            random={3: [0.9, 1.2, 1.5]}), ONE_COLUMN),
    "B1": (_approx_figures, lambda d: _approx_figures.plot_tv_vs_error(
        {"a": [{"eps_avg": 1e-3, "TV": 1e-2, "accepted": True}, {"eps_avg": 1e-2, "TV": 0.3, "accepted": False}]},
        [{"label": "m", "TV truth": 1e-16, "TV exact learner": 0.0}], d, epsilon=0.1), TWO_COLUMN),
    "B2": (_approx_figures, lambda d: _approx_figures.plot_witnesses(
        [{"d": 2, "max witnesses": 1, "mean witnesses": 1.0}, {"d": 3, "max witnesses": 2, "mean witnesses": 1.5}],
        [{"rank": 2, "max witnesses": 3, "bound": 20.0}], d), TWO_COLUMN),
    "B3": (_approx_figures, lambda d: _approx_figures.plot_coefficient_norms(
        {"m": {"t": [1, 2, 3], "lp": [1.0, 0.8, 0.9], "greedy": [1.0, 1.5, 3.0]}}, 2.0, d), ONE_COLUMN),
    "B4": (_approx_figures, lambda d: _approx_figures.plot_queries(
        [{"d": 2, "T": 4, "queries": 30, "accounting bound": 300, "all prefixes Σ V^t": 40},
         {"d": 2, "T": 5, "queries": 90, "accounting bound": 500, "all prefixes Σ V^t": 121}], d), ONE_COLUMN),
    "sensitivity": (_approx_figures, lambda d: _approx_figures.plot_sensitivity(
        "beta", [{"value": 1.0, "TV": 0.1, "queries": 10, "witnesses": 1, "infeasibility rate": 0.0, "accepted": True},
                 {"value": 10.0, "TV": 0.0, "queries": 12, "witnesses": 2, "infeasibility rate": 0.5, "accepted": False}],
        d), TWO_COLUMN),
    "position_kl": (_real_figures, lambda d: _real_figures.plot_position_kl({"LinGen": [0.1, 0.2], "unigram": [1.0, 2.0]}, d),
                    ONE_COLUMN),
    "over_training": (_real_figures, lambda d: _real_figures.plot_over_training(
        _steps, {"α": [0.3, 0.4, 0.5, 0.6]}, d, loss=[6.0, 4.0, 3.0, 2.5], ylabel="power-law exponent α"), ONE_COLUMN),
    "surrogate": (_real_figures, lambda d: _real_figures.plot_surrogate(
        [{"learner": "learn_isan", "d": 2, "queries": 40, "TV": 0.2}, {"learner": "learn_approx", "d": 1, "queries": 90, "TV": 0.3}],
        {1: {"TV": 0.25}, 2: {"TV": 0.1}}, d), TWO_COLUMN),
    "T11": (_theory_figures, lambda d: _theory_figures.plot_kl_vs_bound(
        [{"k": 1, "KL": 1e-3, "bound": 1e-1}, {"k": 2, "KL": 1e-2, "bound": 0.5}], d), ONE_COLUMN),
    "X2 samples": (_theory_figures, lambda d: _theory_figures.plot_samples_per_logit([0.5, 1.0, 2.0], [10, 30, 200],
                                                                                     [40, 300, 2000], d, slope=1.8), ONE_COLUMN),
    "X2 TV": (_theory_figures, lambda d: _theory_figures.plot_tv_vs_samples({"a": [(100, 0.3), (1000, None)]}, d, epsilon=0.1),
              ONE_COLUMN),
    "T7": (_learner_figures, lambda d: _learner_figures.plot_tv_curves({"q": ([2, 3, 4], [1e-16, 1e-16, 1e-16])}, d, name="t7",
                                                                       xlabel="parity bits n", reference=0.5), ONE_COLUMN),
    "T8": (_learner_figures, lambda d: _learner_figures.plot_query_scaling(
        {"d": ([2, 4], [40, 150], 1.9), "T": ([4, 8], [40, 80], 1.0)}, d, name="t8"), TWO_COLUMN),
}


@pytest.mark.parametrize("key", list(CALLS))
def test_each_figure_has_a_paper_width_and_8pt_type(key, tmp_path, monkeypatch):
    module, call, size = CALLS[key]
    drawn = []
    real = _figures.save_figure

    def capture(fig, out_dir, name):
        drawn.append(fig)
        return real(fig, out_dir, name)

    monkeypatch.setattr(module, "save_figure", capture)
    before = dict(mpl.rcParams)
    png, pdf = call(tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    (fig,) = drawn
    assert fig.get_size_inches()[0] == pytest.approx(size[0])
    fig.canvas.draw()  # measure at the figure's own dpi (savefig left a renderer at the file's dpi)
    for ax in fig.axes:
        if ax.get_title():
            assert ax.title.get_fontsize() == pytest.approx(8.0), key
        leg = ax.get_legend()
        if leg is not None:  # inside the axes it covers no data point
            frame = ax.get_window_extent()
            box = leg.get_window_extent()
            inside = box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1
            if inside:
                with mpl.rc_context(PAPER_RC):  # the legend's font as drawn
                    assert _covered(ax, leg._loc, pad=(1.0, 1.0)) == 0, key
    assert dict(mpl.rcParams) == before  # the style lives in an rc_context only


def test_e8_figure_is_one_column_and_its_legend_covers_no_data(tmp_path, monkeypatch):
    from logitrank.verify.claims._registry import CheckConfig

    drawn = []
    real = _figures.save_figure
    monkeypatch.setattr(_figures, "save_figure", lambda fig, d, n: drawn.append(fig) or real(fig, d, n))
    angles = {f"model {i} / model {j}": np.sort(rng.uniform(0.2, 1.4, 20)) for i in range(4) for j in range(i + 1, 4)}
    _real_structure_claims._plot_pairs(angles, rng.uniform(0.05, 0.2, 100), 20, CheckConfig(out_dir=str(tmp_path)))
    (fig,) = drawn
    assert fig.get_size_inches()[0] == pytest.approx(ONE_COLUMN[0])
    (ax,) = fig.axes
    legend = ax.get_legend() or fig.legends[0]
    box, frame = legend.get_window_extent(), ax.get_window_extent()
    # six pair lines spread over the whole axes: the legend must sit outside them
    assert box.y1 <= frame.y0 or box.x0 >= frame.x1


def test_e3_figure_prints_the_fitted_slope(tmp_path, monkeypatch):
    drawn = []
    real = _figures.save_figure
    monkeypatch.setattr(_figures, "save_figure", lambda fig, d, n: drawn.append(fig) or real(fig, d, n))
    _figures.plot_kl_to_rank([1, 2, 4], {"full": [0.5, 0.2, 0.1]}, tmp_path, title="tiny: average KL to rank r",
                             slope=-0.81, r_squared=0.992)
    title = drawn[0].axes[0].get_title()
    assert "$-0.81$" in title and "0.992" in title and "rank $r$" in title


@paper_style
def _finished(x, y, **kw):
    fig, ax = paper_figure()
    ax.plot(x, y, "o", label="data")
    finish(ax, **kw)
    return fig, ax


def test_finish_moves_the_legend_off_the_data():
    # data everywhere except the lower-left corner
    g = np.linspace(0, 1, 15)
    X, Y = np.meshgrid(g, g)
    keep = ~((X < 0.45) & (Y < 0.45))
    fig, ax = _finished(X[keep], Y[keep])
    assert ax.get_legend()._loc == 3  # lower left
    # data everywhere: the legend goes outside the axes
    fig, ax = _finished(X.ravel(), Y.ravel())
    legend = ax.get_legend() or fig.legends[0]
    box, frame = legend.get_window_extent(), ax.get_window_extent()
    assert box.x0 >= frame.x1 - 1 or box.y1 <= frame.y0 + 1


def test_finish_puts_integer_ticks_on_integer_axes():
    _fig, ax = _finished([1, 2, 3], [0.1, 0.5, 0.2], integer_x=True, legend=False)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_math_symbols():
    assert math_symbols("tiny: α ≈ 0.5, σ_i, ε_avg, ξ") == r"tiny: $\alpha$ ≈ 0.5, $\sigma_i$, $\varepsilon_{avg}$, $\xi$"
    assert math_symbols("average KL to rank r, r = 5") == "average KL to rank $r$, $r$ = 5"
    assert math_symbols("rank rows") == "rank rows"
    assert math_symbols("power law V4 D8 α1, r4") == r"power law V4 D8 $\alpha$1, r4"
    assert math_symbols(r"already $\alpha$ and α") == r"already $\alpha$ and α"


def test_paper_figure_rejects_a_bad_width():
    with pytest.raises(ValueError, match=r"width must be 'one' or 'two'; got 'three'"):
        paper_figure("three")
