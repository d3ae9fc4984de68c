"""Redraw the three sweep figures issue 35 found misleading, into docs/figures/ (about a minute on 2 cores).

    .venv/bin/python docs/figures/make_sweep_figures.py

* ``sweep_xi_log.png``: TV to the truth against the oracle noise ξ ∈ {0, 1e-6, 1e-3} (was: a linear axis
  joining 0 to 1e-3 across twelve decades); a log axis with ξ = 0 at its own tick past a dotted break.
* ``notebook02_tv_vs_d.png``: notebook 02's first figure, TV against d at ξ = 0 (was: symlog with 19 decade
  labels, a title repeating its filter); a log axis with a few decades labelled, TV = 0 drawn apart.
* ``heatmap.png``: median TV over (d, V) (was: white text on yellow); each value in the ink that reads on
  its cell, a colour bar over every value.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from logitrank.verify.experiments.sweep import SweepSpec, load, plot_sweep, run_sweep

OUT = Path(__file__).resolve().parent


def main() -> int:
    work = Path(tempfile.mkdtemp())
    store = work / "sweeps.sqlite"
    grid = SweepSpec(name="my-grid", task="learn", seeds=3, grid={"V": [2, 4], "d": [2, 4], "xi": [0.0, 1e-6, 1e-3],
                                                                   "learner": ["exact", "approx"]},
                     fixed={"family": "random_isan", "T": 4, "epsilon": 0.1, "rank_tol": "auto"})
    notebook = SweepSpec(name="d-and-noise", task="learn", seeds=2,
                         fixed={"family": "random_isan", "V": 2, "T": 4, "epsilon": 0.1, "tv_to": "truth"},
                         grid={"d": [1, 2, 3], "xi": [0.0, 1e-3], "learner": ["exact", "approx"]})
    heat = SweepSpec(name="heatmap", task="learn", seeds=2, grid={"V": [2, 4, 8], "d": [2, 4, 8]},
                     fixed={"family": "random_isan", "T": 4, "xi": 1e-3, "learner": "approx", "epsilon": 0.1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rows' own warnings (rank margins, certificates) are stored with them
        for spec in (grid, notebook, heat):
            run_sweep(spec, store=store)
    drawn = [
        plot_sweep(load(store, "my-grid"), x="xi", y="tv_truth", hue="learner", where={"d": 2}, out_dir=work,
                   name="sweep_xi_log")[0],
        plot_sweep(load(store, "d-and-noise"), x="d", y="tv_truth", hue="learner", where={"xi": 0.0}, out_dir=work,
                   name="notebook02_tv_vs_d", title="TV vs d, ξ = 0")[0],
        plot_sweep(load(store, "heatmap"), x="d", y="tv_truth", hue="V", heatmap=True, out_dir=work, name="heatmap")[0],
    ]
    for png in drawn:
        shutil.copyfile(png, OUT / png.name)
        print(f"wrote {(OUT / png.name).relative_to(OUT.parents[1])}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
