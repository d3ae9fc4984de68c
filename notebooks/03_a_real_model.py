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
# # A real model: spectrum, α under downsizing, principal angles, LinGen
#
# Paper A's §3 measures trained language models. This walkthrough does the same on the project's
# tiny byte-level GPT (2 layers, shipped with the package, trained on Shakespeare), and on
# SmolLM2-135M when it is installed (`make smollm2`). The sizes are small so the notebook runs in
# about a minute on two cores; `logitrank spectrum --scale paper` runs the paper's sizes.

# %%
import numpy as np
import torch
from IPython.display import Image, display

from logitrank.algorithms import (
    downsized_spectra,
    fit_lingen_weights,
    fit_power_law,
    lingen,
    logit_matrix,
    nonsense_sequences,
    position_kl,
    principal_angles,
    random_subspace_angles,
    top_k_columns,
)
from logitrank.verify.models import cut_histories_futures, load_model

torch.set_num_threads(1)
names = ["tiny"]
try:
    load_model("smollm2")
    names.append("smollm2")
except Exception as err:  # optional: the notebook says why it is skipped
    print("SmolLM2 not installed, skipped:", type(err).__name__, str(err).splitlines()[0][:120])

# %% [markdown]
# ## 1. Histories and futures cut from text (Appendix A.1.1)
# Windows of 16–30 characters are drawn from held-out plays and cut at a word boundary into a
# history and a future; each model tokenizes the same strings with its own tokenizer. (The tiny
# model reads 64 bytes at most; the paper uses 50–200 characters.)

# %%
H_text, F_text = cut_histories_futures("shakespeare", 120, 120, min_chars=16, max_chars=30, seed=0)
print(repr(H_text[0]), "|", repr(F_text[0]))

# %% [markdown]
# ## 2. The spectrum and its power law (Figure 2, Appendix A.1.2)
# L_{M,k}(H, F) keeps, for each future, the k tokens most likely after the future alone (§3.1).
# α is fitted as in Appendix A.1.1; downsizing H and F by √i should leave it nearly unchanged.

# %%
from logitrank.verify import plot_singular_values

for name in names:
    model = load_model(name)
    n = len(H_text) if name == "tiny" else 32  # SmolLM2 on two CPU cores: a 32 × 32 matrix takes minutes
    H = [tuple(model.encode(h)) for h in H_text[:n]]
    F = [tuple(model.encode(f)) for f in F_text[:n]]
    spectra = downsized_spectra(model, H, F, factors=(1, 4, 16), top_k=20)
    fits = {i: fit_power_law(s.numpy()) for i, s in spectra.items()}
    print(name, {f"{i}×": f"α = {f.alpha:.3f} (R² {f.r_squared:.2f})" for i, f in fits.items()})
    png, _ = plot_singular_values({i: s.numpy() for i, s in spectra.items()}, "nb_figures", fit=fits[1],
                                  name=f"spectrum_{name}", title=f"{name}: singular values of $L_{{M,20}}(H, F)$")
    display(Image(filename=str(png)))

# %% [markdown]
# ## 3. Real and nonsense futures share a column space (Figure 4)
# Scramble every token of F among the futures ("nonsense"), and compare the top-r left singular
# subspaces of the two matrices by their principal angles; random r-dimensional subspaces of the
# same space are the baseline.

# %%
model = load_model("tiny")
H = [tuple(model.encode(h)) for h in H_text]
F = [tuple(model.encode(f)) for f in F_text]
F_nonsense = nonsense_sequences(F, rng=0)
L_real = logit_matrix(model, H, F, top_k=20)
L_nonsense = logit_matrix(model, H, F_nonsense, top_k=20)
for r in (5, 10, 20):
    cos = np.cos(principal_angles(L_real, L_nonsense, r))
    base = np.cos(random_subspace_angles(len(H), r, rng=0))
    print(f"r = {r:2d}: mean cos θ real vs nonsense {cos.mean():.2f}   random subspaces {base.mean():.2f}")

# %% [markdown]
# ## 4. LinGen on one target history (§3.3, Algorithm 1)
# Write the target's logit row as a combination vᵀ L(H, F) of *other* histories' rows, then
# generate for the target using only those histories' logits. The per-position KL to the model's
# own continuation is small where the combination transfers.

# %%
target, others = H[0], H[1:]
cols = top_k_columns(model, F, 20)
v = fit_lingen_weights(logit_matrix(model, others, F, columns=cols), logit_matrix(model, [target], F, columns=cols)[0])
result = lingen(model, others, v, n_tokens=8, n_samples=4, generator=0)
kl = position_kl(model, target, result.tokens, result.logits).mean(0)
print("target:", repr(model.decode(target)[-40:]))
print("LinGen continuation:", repr(model.decode(result.tokens[0].tolist())))
print("KL per position:", np.round(kl.numpy(), 3))
