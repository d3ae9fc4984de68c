"""Served models (issue 25): a client that recovers logits from top-k logprobs and
logit bias, and an OpenAI-compatible server for any logitrank model.

* :func:`serve_app` / :func:`running_server` / :func:`serve` — any :class:`~logitrank.synth.LanguageModel`
  (ISANs, the tiny GPT, Hugging Face models) as ``/v1/completions`` and ``/v1/models`` on FastAPI +
  uvicorn: prompts as token-id lists (one, or a batch), ``max_tokens=1``, ``logprobs=k`` (top-k after
  ``logit_bias``) or vLLM's ``logprob_token_ids`` (up to 128 chosen ids), tokens named ``token_id:N``,
  a prefix cache, OpenAI-style errors (``logitrank serve`` on the command line).
* :class:`APIModel` — a served model as a ``LanguageModel`` through the official ``openai`` client, so
  ``logit_matrix``, ``learn_isan`` and ``learn_approx`` run on it unchanged. Logits are recovered
  per prompt by *token ids* (vLLM's ``logprob_token_ids``: ⌈m/128⌉ calls for m columns, error ≤ 2δ;
  ``method="auto"``, the default, uses it where the server answers it), by the *exact* method (k − 1
  targets at +bias per call, ⌈(m − 1)/(k − 1)⌉ calls, error ≤ 4δ) or by *bisection* (argmax only,
  error ≤ τ + 4δ); see :mod:`~logitrank.verify.models.served._recover`. The prompts of a batch share
  requests (``batch_prompts`` per call). Requests run on a bounded thread pool, retry rate limits
  and transient errors with backoff, are stored in a verified on-disk cache (on by default, under
  ``results/api-cache`` or ``$LOGITRANK_API_CACHE``: a killed run resumes without paying twice) tied
  to what is served by the answers to a few fixed prompts (another model behind the same name is
  refused, :class:`APICacheError`), and an inconsistent server is refused:
  by a probe when the client starts, and by spot checks of a random sample of real requests
  (``spot_check_rate``, a repeat or a re-biased copy of the request) while it runs.
* :class:`RestrictedAPIModel` — a served model on a few tokens and a short horizon (X4's restriction),
  at ⌈V'/128⌉ calls per query by token ids (⌈(V' − 1)/(k − 1)⌉ by the exact method).
(:func:`logitrank.verify.experiments.hidden_width` reads a served model's width through this client.)

Symbols: V vocabulary size, T horizon, k log-probabilities per call, B the bias limit, m columns
recovered, δ the error of one returned log-probability (``logprob_error``), τ the bisection
tolerance.

``openai`` (client) and ``fastapi`` + ``uvicorn`` (server) are imported only when used:
``pip install 'logitrank[api]'``.

Examples
--------
>>> import os
>>> from logitrank.synth import random_isan
>>> truth = random_isan(5, 6, 3, generator=0)
>>> os.environ.setdefault("OPENAI_API_KEY", "EMPTY")  # doctest: +ELLIPSIS
'...'
>>> with running_server(serve_app(truth, name="isan", top_logprobs_limit=3)) as url:
...     with APIModel(url, "isan", k=3, cache_dir=None) as api:
...         err = (api.logits([[0, 1]]) - truth.logits([[0, 1]])).abs().max().item()
...         err <= api.error_bound(), api.method, api.records[-1].calls
...     with APIModel(url, "isan", k=3, method="exact", cache_dir=None) as api:
...         err = (api.logits([[0, 1]]) - truth.logits([[0, 1]])).abs().max().item()
...         err <= api.error_bound(), api.method, api.records[-1].calls
(True, 'token_ids', 1)
(True, 'exact', 2)
"""

from ._client import APIModel, QueryRecord, RestrictedAPIModel
from ._errors import (
    APICacheError,
    APICacheWarning,
    APIModelError,
    InconsistentServerError,
    RecoveryError,
    RequestRefusedError,
    ServerUnreachableError,
    TokenMapError,
)
from ._server import ServerFaults, running_server, serve, serve_app
from ._settings import METHODS, APISettings

__all__ = [
    "METHODS",
    "APICacheError",
    "APICacheWarning",
    "APIModel",
    "APIModelError",
    "APISettings",
    "InconsistentServerError",
    "QueryRecord",
    "RecoveryError",
    "RequestRefusedError",
    "RestrictedAPIModel",
    "ServerFaults",
    "ServerUnreachableError",
    "TokenMapError",
    "running_server",
    "serve",
    "serve_app",
]
