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
# # Serving a model, learning from it, reading the bill
#
# Paper B's query model is what hosted language models sell: next-token log-probabilities for a
# prompt — but only the top k of them (k ≤ 20) — and a `logit_bias` per token (|bias| ≤ 100).
# `logitrank.verify.models` serves any logitrank model behind such an OpenAI-compatible endpoint and
# reads it back with the official `openai` client as an ordinary `LanguageModel`, recovering each
# logit from biased top-k answers. Everything below runs on 127.0.0.1 (`pip install 'logitrank[api]'`).

# %%
import contextlib
import os

import torch

from logitrank.algorithms import learn_isan, logit_matrix
from logitrank.synth import random_isan
from logitrank.verify import tv_distance
from logitrank.verify.experiments import hidden_width
from logitrank.verify.models import APIModel, load_model, running_server, serve_app

os.environ.setdefault("OPENAI_API_KEY", "EMPTY")  # a local server takes any key
truth = random_isan(5, 5, 2, generator=0)  # V = 5, T = 5, hidden dim 2
stack = contextlib.ExitStack()  # closed at the end of the section
# `logitrank serve --model isan:5,5,2` does the same from a shell
url = stack.enter_context(running_server(serve_app(truth, name="isan", top_logprobs_limit=20, bias_limit=100)))
url

# %% [markdown]
# ## One logit vector through the API
#
# The exact method puts +100 on a reference token and on k − 1 targets per call; the differences of
# their returned log-probabilities are logit differences, exactly: ⌈(V − 1)/(k − 1)⌉ calls per prompt.
# With k = 3 that is 2 calls for V = 5.

# %%
exact = stack.enter_context(APIModel(url, "isan", k=3, logprob_error=1e-12, method="exact"))  # float64 server
prefix = torch.tensor([[0, 3, 1]])  # a (B, t) LongTensor of token ids
print(exact.logits(prefix))
print(truth.logits(prefix))
print(exact.records[-1])

# %% [markdown]
# A server that answers vLLM's `logprob_token_ids` (vLLM itself, and `logitrank serve`) returns the
# log-probabilities of up to 128 named tokens per call, so a vector takes ⌈V/128⌉ calls with no bias.
# The default `method="auto"` asks the server once whether it can, and reads that way when it does.

# %%
api = stack.enter_context(APIModel(url, "isan", k=3, logprob_error=1e-12))
print(api.logits(prefix), api.method)
print(api.records[-1])

# %% [markdown]
# ## A learner through the API
#
# `learn_isan` takes the API model unchanged. Its report counts logit queries; the API model
# counts what they cost in calls (repeated prompts are answered from the client's cache).

# %%
learned, report = learn_isan(api, epsilon=0.1, generator=0)
print("TV(truth, learned) =", tv_distance(truth.distribution(), learned.distribution()))
api.bill(report)

# %%
H, F = [(a, b) for a in range(5) for b in range(5)], [(), (0,), (4, 4)]  # one history length: rank <= d (Fact C.4)
L = logit_matrix(api, H, F)
print(tuple(L.shape), "rank", torch.linalg.matrix_rank(L).item(), "<= 2")
stack.close()

# %% [markdown]
# ## The tiny GPT's width, read from outside
#
# The logits of a network are W·h with h its last hidden state, so logit vectors of many prompts,
# on m > width token columns, have rank equal to the width (Carlini et al. 2024). The tiny model's
# width is 96; its final LayerNorm's bias is what makes it 96 rather than 95.

# %%
tiny = load_model("tiny")
g = torch.Generator().manual_seed(0)
prompts = [tuple(torch.randint(0, 256, (int(n),), generator=g).tolist()) for n in torch.randint(1, 12, (128,), generator=g)]
columns = sorted(torch.randperm(256, generator=g)[:112].tolist())
with running_server(serve_app(tiny, name="tiny")) as tiny_url, APIModel(tiny_url, "tiny", logprob_error=1e-9) as served:
    width = hidden_width(served, prompts, columns)
print(f"rank {width.rank} (width {tiny.width}), gap σ_r/σ_r+1 = {width.gap:.0f}, "
      f"{width.calls} calls ({width.calls / len(prompts):.0f} per prompt), {width.seconds:.1f} s")
width.singular_values[[0, 94, 95, 96, 97]]
