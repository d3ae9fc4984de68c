"""Issues 23 and 24: ``logitrank spectrum`` runs with no options on the default model; its figure, its
lines and its progress say what the numbers mean."""

import json

import numpy as np

from logitrank.algorithms import fit_power_law
from logitrank.verify.cli import main
from logitrank.verify.experiments import _spectrum as spec
from logitrank.verify.figures import plot_spectrum_summary, r_squared_text


def test_default_lengths_fit_the_model_context():
    assert spec.default_lengths(None) == (50, 200) and spec.default_lengths(1024, 1) == (50, 200)
    assert spec.default_lengths(64, 1) == (16, 38)  # E1's lengths for the 64-position tiny model
    assert spec.default_lengths(8, 0) == (2, 4)


def test_r_squared_is_never_rounded_to_one():
    assert [r_squared_text(r) for r in (0.9953, 0.9996, 0.99996, 1.0, 0.5)] == ["0.995", "0.9996", "0.99996",
                                                                                    "1.000", "0.500"]


def test_spectrum_with_no_options_runs_on_the_tiny_model(tmp_path, monkeypatch, capsys):
    """The default command (issue 23): 4 s here with one torch thread (150 × 150 futures, lengths 16:38)."""
    monkeypatch.chdir(tmp_path)
    assert main(["spectrum"]) == 0
    out, err = capsys.readouterr()
    [folder] = (tmp_path / "results" / "spectrum").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["settings"]["lengths"] == [16, 38] and summary["|H|"] == 150 and summary["settings"]["k"] == 50
    assert isinstance(summary["alpha spread within the limit"], bool) and summary["alpha spread limit (E1)"] == 0.1
    assert (folder / "spectrum.png").stat().st_size > 10_000
    lines = out.strip().splitlines()
    assert "paper indexing: Appendix A.1.1 renumbers" in lines[1] and "original indexing: shown because" in lines[2]
    assert "α spread over downsizing" in lines[3] and "E1's limit 0.1" in lines[3]
    assert "\r" not in err and err.strip().splitlines()[-1].endswith(" s")  # progress lines, not a bar (no TTY)


def test_progress_is_a_few_whole_lines_without_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(spec, "PROGRESS_EVERY_S", 0.0)
    bar = spec._Progress(100, "spectrum: L(m)", enabled=True)
    for _ in range(4):
        bar.update(25)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines()[0].startswith("spectrum: L(m): 25/100 cells (25%)")
    assert err.splitlines()[-1].startswith("spectrum: L(m): 100/100 cells in")


def test_figure_has_the_fit_alpha_half_and_the_paper_band(tmp_path, monkeypatch):
    from logitrank.verify.figures import _spectrum as _figures

    drawn = {}
    real_save = _figures.save_figure
    monkeypatch.setattr(_figures, "save_figure", lambda fig, d, name: drawn.setdefault("fig", fig) and real_save(fig, d, name))
    i = np.arange(1, 201)
    sv = {1: 50 * i ** -0.6, 2: 40 * i[:141] ** -0.62}
    fit = fit_power_law(sv[1])
    summary = {"model": "m", "alpha (paper indexing)": fit.alpha, "R² (paper indexing)": 0.9953,
               "alpha spread over downsizing (paper indexing)": 0.207, "alpha spread limit (E1)": 0.1}
    plot_spectrum_summary(tmp_path / "spectrum.png", sv, {1: (200, 200), 2: (141, 141)}, 5, summary, fit)
    ax = drawn["fig"].axes[0]
    labels = ax.get_legend_handles_labels()[1] if ax.get_legend() else [t.get_text() for t in drawn["fig"].legends[0].texts]
    assert any(lab.startswith("fit:") and "0.995" in lab for lab in labels)
    assert any("½" in lab for lab in labels) and any("paper A, trained LMs" in lab and "0.54–0.57" in lab for lab in labels)
    assert "0.995" in ax.get_title() and "> E1's limit 0.1" in ax.get_title()
    assert (tmp_path / "spectrum.png").is_file()
