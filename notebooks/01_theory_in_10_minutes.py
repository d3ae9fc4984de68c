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
# # The low-logit-rank theory in ten minutes
#
# Paper A (*Sequences of Logits Reveal the Low Rank Structure of Language Models*) says: arrange a
# language model's next-token logits after every history h followed by every future f into one
# matrix L(H, F) — the *extended logit matrix* (Definition 2.2). For trained models it is close to
# low rank, and a model whose matrix has rank exactly d is the same thing as a time-varying ISAN
# of dimension d (Theorem 4.3). This notebook checks each step on models small enough to enumerate.

# %%
import torch

from logitrank.algorithms import (
    fit_isan_mle,
    generic_level_rank,
    isan_from_spanning_sets,
    learn_isan,
    level_ranks,
    logit_matrix,
    numerical_rank,
)
from logitrank.synth import CountingOracle, noisy_parity, random_isan
from logitrank.verify import tv_distance

torch.set_num_threads(1)

# %% [markdown]
# ## 1. An ISAN and its logit matrix (Definition 4.2, Fact C.4)
# A time-varying ISAN keeps a d-dimensional state x_t; token z multiplies it by A[t, z], and the
# logits are B[t]·x_t. Here V = 3 tokens, horizon T = 6, hidden dimension d = 4, in float64.

# %%
model = random_isan(vocab_size=3, horizon=6, hidden_dim=4, generator=0)
histories = model.sample(40, generator=1)[:, :3]            # (40, 3) LongTensor of histories
futures = [(), (0,), (1,), (2, 1), (0, 2)]                 # five futures, lengths 0-2
L = logit_matrix(model, histories, futures)                  # (40, 5·3) mean-centred logits
print("L:", tuple(L.shape), "numerical rank:", numerical_rank(L), "≤ d = 4")

# %% [markdown]
# Fact C.4 bounds the rank of every *level* matrix L(Σ^t, Σ^{<T−t}) by d. A random ISAN reaches the
# generic value min(d, V^t, V^{T−t} − 1) exactly:

# %%
ranks = level_ranks(model)
generic = [generic_level_rank(3, 6, 4, t) for t in range(6)]
print("level ranks:", ranks)
print("generic    :", generic)
assert ranks == generic

# %% [markdown]
# ## 2. Theorem 4.3, both ways
# (⇒) is Fact C.4 above. (⇐): from histories that span each level's rows and futures that span
# its columns, Lemma C.3 builds an ISAN of dimension d with *the same distribution*. We pick the
# spanning sets by hand here (all histories of a level; the empty future plus single tokens).

# %%
from itertools import product

T, V = model.horizon, model.vocab_size
H = [[tuple(h) for h in product(range(V), repeat=t)] for t in range(T)]
F = [[()] + [(z,) for z in range(V)] if t < T - 1 else [()] for t in range(T)]
rebuilt = isan_from_spanning_sets(model, H, F)
print("rebuilt dim:", rebuilt.hidden_dim, " TV to the original:", float(tv_distance(model.distribution(), rebuilt.distribution())))

# %% [markdown]
# The rebuilt ISAN's dimension is the largest spanning set (here up to V^t, not d): Lemma C.3 needs
# only that the sets *span*. Algorithms 2–3 find spanning sets of size d from queries alone.
#
# ## 3. Learning from logit queries (Algorithms 2–3, Theorem 4.4)
# The learner sees the model only through a logit oracle; `CountingOracle` counts every query.

# %%
oracle = CountingOracle(model)
learned, report = learn_isan(oracle, epsilon=0.1, generator=0)
print(f"learned dim {learned.hidden_dim} (true d = 4) in {report.rounds} rounds, {oracle.queries} queries")
print("TV(learned, true) =", float(tv_distance(model.distribution(), learned.distribution())))

# %% [markdown]
# ## 4. The parity contrast (Theorem C.13)
# Noisy parity over n bits has logit rank 1 (Fact C.11), so logit queries learn it exactly; a
# learner that only sees *samples* must find the secret subset, which costs exponentially many.

# %%
parity = noisy_parity([1, 0, 1, 1, 0, 1], noise=0.1)      # secret bits; T = n + 1 tokens
print("parity level ranks:", level_ranks(parity))
q_model, _ = learn_isan(CountingOracle(parity), epsilon=0.1, generator=0)
samples = parity.sample(2000, generator=2)
mle, _ = fit_isan_mle(samples, vocab_size=2, hidden_dim=2, steps=150, generator=3)
print("TV, logit-query learner :", float(tv_distance(parity.distribution(), q_model.distribution())))
print("TV, samples-only MLE    :", float(tv_distance(parity.distribution(), mle.distribution())))

# %% [markdown]
# The query learner is exact to float precision; maximum likelihood on 2000 samples is not — and
# the gap widens exponentially with n (claim T7 runs the sweep: `logitrank check T7`).
