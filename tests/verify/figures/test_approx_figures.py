"""Figures of the approximate-rank learner and the sensitivity study (verify._approx_figures, _sensitivity)."""

import pytest

from logitrank.synth import random_isan
from logitrank.verify.experiments._sensitivity import sensitivity_study
from logitrank.verify.figures._approx import (
    plot_coefficient_norms,
    plot_queries,
    plot_sensitivity,
    plot_tv_vs_error,
    plot_witnesses,
)


def test_every_figure_writes_png_and_pdf(tmp_path):
    paths = [
        plot_tv_vs_error({"a": [{"eps_avg": 1e-3, "TV": 1e-2, "accepted": True}, {"eps_avg": 1e-2, "TV": 0.3, "accepted": False}]},
                         [{"label": "m", "TV truth": 1e-16, "TV exact learner": 0.0}], tmp_path, epsilon=0.1),
        plot_witnesses([{"d": 2, "max witnesses": 1, "mean witnesses": 1.0}, {"d": 3, "max witnesses": 2, "mean witnesses": 1.5}],
                       [{"rank": 2, "max witnesses": 3, "bound": 20.0}], tmp_path),
        plot_coefficient_norms({"m": {"t": [1, 2, 3], "lp": [1.0, 0.8, 0.9], "greedy": [1.0, 1.5, 3.0]}}, 2.0, tmp_path),
        plot_queries([{"d": 2, "T": 4, "queries": 30, "accounting bound": 300, "all prefixes Σ V^t": 40},
                      {"d": 2, "T": 5, "queries": 90, "accounting bound": 500, "all prefixes Σ V^t": 121}], tmp_path),
        plot_sensitivity("beta", [{"value": 1.0, "TV": 0.1, "queries": 10, "witnesses": 1, "infeasibility rate": 0.0, "accepted": True},
                                  {"value": 10.0, "TV": 0.0, "queries": 12, "witnesses": 2, "infeasibility rate": 0.5, "accepted": False}],
                         tmp_path),
    ]
    for png, pdf in paths:
        assert png.stat().st_size > 0 and pdf.stat().st_size > 0


def test_sensitivity_study_runs_one_value_per_parameter(tmp_path):
    model = random_isan(2, 4, 2, generator=0)
    out = sensitivity_study(model, rank=2, values={"beta": [2.0], "threshold": [1e-3], "epochs": [4]}, out_dir=tmp_path,
                            learner_kwargs={"n_validation": 8, "n_spanner": 16})
    for name in ("beta", "threshold", "epochs"):
        (row,) = out[name]
        assert row["accepted"] and row["TV"] < 1e-9
        assert (tmp_path / f"sensitivity_{name}.png").exists()
    with pytest.raises(ValueError, match=r"parameters must be among \('beta', 'threshold', 'epochs'\); got \['rank'\]"):
        sensitivity_study(model, parameters=["rank"])
