# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A sensitivity study: both learners across hidden dimension d and oracle noise ξ
#
# The two query learners — paper A's exact-rank learner (Algorithms 2–3) and paper B's
# approximate-rank learner — promise small TV when the logit rank is low and the oracle is (nearly)
# exact. How does the TV they reach move with the model's hidden dimension d and with noise ξ on
# every logit the oracle returns? A sweep is a grid × seeds over a *task*; results go to SQLite, so
# a rerun computes only what is missing.

# %%
import tempfile
from pathlib import Path

from IPython.display import Image, display

from logitrank.verify.experiments.sweep import SweepSpec, load, plot_sweep, run_sweep, sweep_table

work = Path(tempfile.mkdtemp())
spec = SweepSpec(
    name="d-and-noise",
    task="learn",
    seeds=2,
    fixed={"family": "random_isan", "V": 2, "T": 4, "epsilon": 0.1, "tv_to": "truth"},
    grid={"d": [1, 2, 3], "xi": [0.0, 1e-3], "learner": ["exact", "approx"]},
)
run = run_sweep(spec, store=work / "sweeps.sqlite")
print(f"{run.done} cells × seeds computed, {run.failed} failed, {run.cached} taken from the store")

# %% [markdown]
# Running the same spec again computes nothing: every (cell, seed) is already in the store.

# %%
again = run_sweep(spec, store=work / "sweeps.sqlite")
print("second run: computed", again.done, "— cached", again.cached)

# %% [markdown]
# ## The table: median and [min, max] over seeds, one row per cell
# `sweep_table` is what `logitrank sweep show` prints: rows sorted by the grid keys, the settings
# shared by every row folded into a header line, metrics chosen by name (`summarize` gives the raw
# numbers: median, quartiles and range of every metric).

# %%
df = load(work / "sweeps.sqlite", "d-and-noise")
table = sweep_table(df, metrics=["tv_truth", "queries"])
print("\n".join(table.header_lines()))
table.frame

# %% [markdown]
# ## TV to the noiseless model against d, one line per learner and noise level
# With an exact oracle both learners reach float precision. With ξ = 1e-3 on every logit, the TV
# to the noiseless model sits near ξ: the learners reproduce what the oracle says, noise included
# (claim X3 measures TV ≈ ξ for the exact learner when its rank tolerance sits above ξ). The
# approximate learner may warn `ApproxNotAcceptedWarning` on noisy cells: no epoch passed its
# validation threshold g, and the sweep row records `accepted = 0`.
#
# The y axis is logarithmic because the TVs span many decades; a TV of exactly 0 (float
# cancellation) is drawn apart, below a dotted break, never joined to the line. With two seeds
# per cell each bar spans [min, max]; the title says so.

# %%
for xi in (0.0, 1e-3):
    png, _ = plot_sweep(df, x="d", y="tv_truth", hue="learner", where={"xi": xi}, out_dir=work,
                        name=f"tv_vs_d_xi{xi:g}", title=f"TV vs d, ξ = {xi:g}")
    display(Image(filename=str(png)))

# %% [markdown]
# ## TV against the noise ξ itself
# ξ spans 0 and 10⁻³: a log axis, with ξ = 0 at its own tick past a dotted break (a linear axis
# would squeeze every noisy cell against the right edge; symlog would invent decades between 0 and
# 10⁻³).

# %%
png, _ = plot_sweep(df, x="xi", y="tv_truth", hue="learner", where={"d": 2}, out_dir=work, name="tv_vs_xi_d2",
                    title="TV vs ξ, d = 2")
display(Image(filename=str(png)))

# %% [markdown]
# ## Queries against d
# The query count of each learner grows polynomially in d (claims T8 and B4 fit the exponents).

# %%
png, _ = plot_sweep(df, x="d", y="queries", hue="learner", out_dir=work, name="queries_vs_d")
display(Image(filename=str(png)))

# %% [markdown]
# The same study at the theorist's full grid is `examples/theorist_grid.toml`:
# `logitrank sweep run examples/theorist_grid.toml --jobs 2` (`--dry-run` first lists its 324 rows
# and prices them from stored timings, running nothing), then `logitrank sweep show` and
# `logitrank sweep plot theorist-grid --x d --y tv_truth --hue V --where T=8`.
