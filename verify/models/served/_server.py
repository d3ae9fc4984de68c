"""Any logitrank :class:`~logitrank.synth.LanguageModel` behind an OpenAI-compatible completions endpoint.

Endpoints (FastAPI, served by uvicorn):

* ``GET /v1/models`` and ``GET /v1/models/{name}`` — the model card, with the OpenAI fields (``id``,
  ``object``, ``created``, ``owned_by``) plus ``vocab_size``, ``horizon``, ``max_prompt_tokens``,
  ``max_model_len`` (as vLLM), ``top_logprobs_limit``, ``bias_limit``, ``bos_token_id`` (the model's
  start token, or null) and ``adds_bos: true`` (the model prepends its start token to every prompt,
  so a client sends prompts without it; vLLM adds none to token-id prompts and says nothing);
* ``GET /health`` — 200 with an empty body (as vLLM; no API key needed);
* ``POST /v1/completions`` — prompts as token-id lists (one list, or a list of lists: one choice per
  prompt, ``choices[i].index`` = i, as vLLM), ``max_tokens`` 1 (the default here), ``logprobs`` 0 …
  ``top_logprobs_limit``, ``logit_bias`` {"id": bias} with |bias| <= ``bias_limit``. Each choice
  carries the top ``logprobs`` log-probabilities of the next token **after** the bias,
  log_softmax(L[· | prompt] + bias) computed in float64 (vLLM's ``processed_logprobs`` at temperature
  1), tokens named ``token_id:N`` (vLLM's ``return_tokens_as_token_ids``, accepted as true), and the
  completion is the argmax of the biased logits.
* vLLM's ``logprob_token_ids`` (up to :data:`MAX_LOGPROB_TOKEN_IDS` = 128 ids, as vLLM 0.32): the
  top-k is replaced by the completion's token followed by the ids named, in the order named (one
  entry per id), with the same log-probabilities; ``logprobs`` must be set (any value >= 0, not
  bounded by ``top_logprobs_limit``: vLLM ignores it then), and more than 128 ids, an id outside the
  vocabulary or ids that are not ints are refused with a 400 naming the field. An empty list is no
  list (vLLM's ``or None``).

The server speaks vLLM's dialect or refuses: a field it does not implement is answered 400 naming
it (``temperature`` other than 0, ``top_p`` other than 1, ``seed``, penalties other than neutral,
``prompt_logprobs``, ``stop``, ``suffix``, ``stream``, ``echo``, ``n``/``best_of`` > 1,
``max_tokens`` > 1, and any unknown field), never ignored.

Every bad request is answered with status 400 (404 for an unknown model or route, 401 for a wrong
key, 413 for a body over the limit) and the OpenAI error body ``{"error": {"message", "type",
"param", "code"}}``, whose message names the field, the value received and the limit. The body is
read and parsed here, not by FastAPI: an empty body, a Content-Type other than JSON, bytes that are
not UTF-8, JSON nested deeper than Python parses, a key repeated in one object, and a body longer
than ``max_body_bytes`` (refused while it streams in, never read whole) each get one such error.

**Limits** (configurable, listed in the model card): ``max_body_bytes`` (default 8 MiB),
``max_prompts`` per request (default 256) and ``max_prompt_tokens`` per prompt (default 8192, and
never more than the model continues). ``logit_bias`` keys are decimal token ids (``"7"``; not
``"1_0"``, ``"+7"`` or ``" 7"``), each id named once (``"7"`` and ``"07"`` together are refused).

**Fairness.** Requests run on a thread pool and take the model one prompt at a time through a
first-come-first-served lock, so a request of many prompts and a request of one are interleaved:
one large batch never holds the model until it is done.

**Prefix cache.** The model is asked once per distinct prompt: the mean-centred logits are kept in
an LRU table of ``cache_size`` prompts (default: what fits in 256 MiB, at most 4096), so the
⌈V/(k−1)⌉ calls of one exact recovery cost one forward pass. ``app.state.stats`` counts requests, forward passes and cache hits.

**Faults** (:class:`ServerFaults`) make the server misbehave on purpose, so a client's refusals can
be tested: fewer tokens than asked, log-probabilities before the bias, noisy answers, rate limits
and 5xx errors on the first requests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from logitrank._validation import check_int, check_model, check_real

from ._tokens import token_name

__all__ = ["MAX_LOGPROB_TOKEN_IDS", "ServerFaults", "prompt_limit", "running_server", "serve", "serve_app"]

_CACHE_BYTES = 2**28  # default memory of the prefix cache
#: default limits of one request (serve_app's max_body_bytes, max_prompts, max_prompt_tokens)
MAX_BODY_BYTES = 8 * 2**20
MAX_PROMPTS = 256
MAX_PROMPT_TOKENS = 8192
#: most ids of one ``logprob_token_ids`` list (vLLM 0.32's ``MAX_LOGPROB_TOKEN_IDS``)
MAX_LOGPROB_TOKEN_IDS = 128
_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
_ROUTES = "GET /v1/models, GET /v1/models/{model} and POST /v1/completions"


@dataclass(frozen=True)
class ServerFaults:
    """Ways to make the server misbehave, for testing clients (all off by default).

    Attributes
    ----------
    drop_tokens : int
        Return this many fewer top log-probabilities than asked (with ``logprob_token_ids``: leave out the
        last this-many ids named).
    ignore_bias : bool
        Return log-probabilities *before* logit_bias (the bias still picks the completion), as some
        hosted APIs do since 2024.
    noise : float
        Add N(0, noise²) to every returned log-probability, fresh per request (an inconsistent server).
    rate_limit : int
        Answer the first this-many completion requests with 429 (with ``Retry-After: 0``).
    unavailable : int
        Answer the next this-many completion requests (after the rate-limited ones) with 503.
    seed : int
        Seed of the noise.
    token_texts : tuple of str, optional
        Name token i by ``token_texts[i]`` instead of ``token_id:i``, as a server without vLLM's
        ``--return-tokens-as-token-ids`` does (two ids with one text collapse into one entry).
    honest_prompts : tuple of prompts, optional
        Prompts (token-id tuples) answered without ``noise``: a server exact only where a client
        probes it.
    repeatable_noise : bool
        Draw the noise from the request itself (prompt, logprobs, bias), so a repeated request gets
        the same wrong answer and only a re-biased one shows the error.
    token_ids : {"answer", "refuse", "ignore"}
        What becomes of vLLM's ``logprob_token_ids``: answered (default), refused with a 400 naming the
        field (a server without it, as logitrank's before issue 33), or accepted and ignored (the top-k
        comes back, as vLLM before the field existed does with any unknown field).
    """

    drop_tokens: int = 0
    ignore_bias: bool = False
    noise: float = 0.0
    rate_limit: int = 0
    unavailable: int = 0
    seed: int = 0
    token_texts: tuple[str, ...] | None = None
    honest_prompts: tuple = ()
    repeatable_noise: bool = False
    token_ids: str = "answer"

    def __post_init__(self):
        for name in ("drop_tokens", "rate_limit", "unavailable", "seed"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=0))
        object.__setattr__(self, "noise", check_real("noise", self.noise, low=0.0))
        if not isinstance(self.ignore_bias, bool):
            raise TypeError(f"ignore_bias must be a bool; got {self.ignore_bias!r}")
        if self.token_texts is not None:
            object.__setattr__(self, "token_texts", tuple(str(t) for t in self.token_texts))
        object.__setattr__(self, "honest_prompts", tuple(tuple(int(t) for t in p) for p in self.honest_prompts))
        if not isinstance(self.repeatable_noise, bool):
            raise TypeError(f"repeatable_noise must be a bool; got {self.repeatable_noise!r}")
        if self.token_ids not in ("answer", "refuse", "ignore"):
            raise ValueError(f"token_ids must be 'answer', 'refuse' or 'ignore'; got {self.token_ids!r}")


def prompt_limit(model) -> int | None:
    """Longest prompt the model can continue: T − 1 with a horizon T, else ``max_length`` less the
    start token when the model has one (the causal LMs of :mod:`logitrank.verify.models`), else None."""
    if model.horizon is not None:
        return int(model.horizon) - 1
    max_length = getattr(model, "max_length", None)
    if max_length is None:
        return None
    return int(max_length) - (0 if getattr(model, "bos_token_id", None) is None else 1)


class _BadRequest(Exception):
    def __init__(self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.message, self.param, self.status, self.code, self.kind = message, param, status, code, kind
        self.headers = headers


class _FairLock:
    """A lock handed to its waiters in the order they came (threading.Lock favours the thread that
    just released it, so one request looping over many prompts would starve the others)."""

    def __init__(self):
        self._guard = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self):
        with self._guard:
            if not self._held and not self._waiters:
                self._held = True
                return self
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # the releasing thread hands the lock over: _held stays True
        return self

    def __exit__(self, *exc) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False


@dataclass(frozen=True)
class _Limits:
    """What one request may hold (serve_app's max_body_bytes, max_prompts, max_prompt_tokens)."""

    body_bytes: int = MAX_BODY_BYTES
    prompts: int = MAX_PROMPTS
    prompt_tokens: int = MAX_PROMPT_TOKENS


class _Engine:
    """The model, its prefix cache and the request logic (no HTTP here)."""

    def __init__(self, model, name, top_logprobs_limit, bias_limit, cache_size, faults, aliases=(), limits=None):
        self.model, self.name = model, name
        self.names = tuple(dict.fromkeys((name, *aliases)))  # every name the model answers to, canonical first
        self.vocab_size = int(model.vocab_size)
        self.limits = limits or _Limits()
        self.model_prompt = prompt_limit(model)
        self.max_prompt = (self.limits.prompt_tokens if self.model_prompt is None
                           else min(self.model_prompt, self.limits.prompt_tokens))
        self.k_limit, self.bias_limit, self.cache_size = top_logprobs_limit, bias_limit, cache_size
        self.faults = faults or ServerFaults()
        self.rng = np.random.default_rng(self.faults.seed)
        self.lock = threading.Lock()  # counters and the noise generator
        self.model_lock = _FairLock()  # the model and its prefix cache, first come first served
        self.memo: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self.stats = {"requests": 0, "completions": 0, "forward": 0, "cache_hits": 0}
        self.created = int(time.time())
        bos = getattr(model, "bos_token_id", None)
        self.bos_token_id = None if bos is None else int(bos)

    def card(self, name: str | None = None) -> dict:
        T = self.model.horizon
        return {"id": name or self.name, "object": "model", "created": self.created, "owned_by": "logitrank",
                "root": self.name, "aliases": list(self.names),
                "vocab_size": self.vocab_size, "horizon": None if T is None else int(T),
                "max_prompt_tokens": self.max_prompt,
                "max_model_len": None if self.model_prompt is None else self.model_prompt + 1,
                "top_logprobs_limit": self.k_limit, "bias_limit": self.bias_limit,
                "max_prompts": self.limits.prompts, "max_body_bytes": self.limits.body_bytes,
                "logprob_token_ids_limit": MAX_LOGPROB_TOKEN_IDS,
                "bos_token_id": self.bos_token_id, "adds_bos": True}

    # -- validation ----------------------------------------------------------------------------
    def check_model_name(self, name) -> None:
        if name not in self.names:
            raise _BadRequest(f"The model `{name}` does not exist; this server serves {' or '.join(map(repr, self.names))}",
                              param="model", status=404, code="model_not_found")

    def prompts(self, prompt) -> list[tuple[int, ...]]:
        if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt)):
            raise _BadRequest("prompt must be token ids (a list of ints, or a list of such lists); this server has "
                              "no tokenizer, so text prompts are not accepted", param="prompt")
        if not isinstance(prompt, list):
            raise _BadRequest(f"prompt must be a list of token ids; got {type(prompt).__name__}", param="prompt")
        rows = prompt if prompt and all(isinstance(p, list) for p in prompt) else [prompt]
        if len(rows) > self.limits.prompts:
            raise _BadRequest(f"prompt holds {len(rows)} prompts; this server takes at most {self.limits.prompts} per "
                              "request (max_prompts): split the batch", param="prompt", code="too_many_prompts")
        return [self._prompt(row) for row in rows]

    def _prompt(self, row: list) -> tuple[int, ...]:
        if len(row) > self.max_prompt:
            if self.model_prompt is not None and len(row) > self.model_prompt:
                raise _BadRequest(f"prompt has {len(row)} tokens; this model continues prompts of at most "
                                  f"{self.model_prompt} tokens", param="prompt", code="context_length_exceeded")
            raise _BadRequest(f"prompt has {len(row)} tokens; this server takes prompts of at most {self.max_prompt} "
                              "tokens (max_prompt_tokens)", param="prompt", code="context_length_exceeded")
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in row):
            raise _BadRequest("prompt must hold integer token ids only", param="prompt")
        bad = [t for t in row if not 0 <= t < self.vocab_size]
        if bad:
            raise _BadRequest(f"prompt holds token id {bad[0]}, outside the vocabulary [0, {self.vocab_size})",
                              param="prompt")
        return tuple(row)

    def options(self, body: dict) -> tuple[int | None, dict[int, float], tuple[int, ...] | None]:
        """(logprobs, logit_bias, logprob_token_ids) of a request, checked."""
        max_tokens = body.get("max_tokens", 1)
        if max_tokens != 1:
            raise _BadRequest(f"max_tokens must be 1 (this server scores the next token only); got {max_tokens!r}",
                              param="max_tokens")
        for name, allowed in (("n", 1), ("best_of", 1)):
            if body.get(name, allowed) not in (None, allowed):
                raise _BadRequest(f"{name} must be {allowed}; got {body.get(name)!r}", param=name)
        for name in ("stream", "echo"):
            if body.get(name):
                raise _BadRequest(f"{name}=true is not supported by this server", param=name)
        _refuse_unsupported(body)
        k = body.get("logprobs")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 0):
            raise _BadRequest(f"logprobs must be a non-negative integer; got {k!r}", param="logprobs")
        token_ids = self.token_ids(body.get("logprob_token_ids"), k)
        if k is not None and token_ids is None and k > self.k_limit:
            raise _BadRequest(f"logprobs must be <= {self.k_limit} (this server's top_logprobs_limit); got {k}",
                              param="logprobs")
        return k, self.bias(body.get("logit_bias") or {}), token_ids

    def token_ids(self, raw, k: int | None) -> tuple[int, ...] | None:
        """vLLM's ``logprob_token_ids``, checked in vLLM's order: ``logprobs`` set, at most 128 ids, each in the
        vocabulary. None and [] mean none (vLLM's ``or None``)."""
        if raw is None or raw == [] or self.faults.token_ids == "ignore":
            return None
        if self.faults.token_ids == "refuse":
            raise _BadRequest(f"logprob_token_ids={json.dumps(raw)[:60]} is not supported: this server returns the top "
                              "log-probabilities only (ServerFaults.token_ids='refuse'); send logprob_token_ids=None "
                              "or leave it out", param="logprob_token_ids", code="unsupported_field")
        if not isinstance(raw, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
            shown = json.dumps(raw)[:80] if isinstance(raw, (list, dict, str, int, float)) else type(raw).__name__
            raise _BadRequest(f"logprob_token_ids must be a list of token ids (ints); got {shown}",
                              param="logprob_token_ids")
        if k is None:
            raise _BadRequest("when using `logprob_token_ids`, `logprobs` must be set (any value >= 0, as vLLM)",
                              param="logprob_token_ids")
        if len(raw) > MAX_LOGPROB_TOKEN_IDS:
            raise _BadRequest(f"Requested logprob_token_ids of length {len(raw)}, which is greater than max allowed: "
                              f"{MAX_LOGPROB_TOKEN_IDS} (logprob_token_ids names at most {MAX_LOGPROB_TOKEN_IDS} token "
                              "ids per request, as vLLM)", param="logprob_token_ids", code="too_many_token_ids")
        bad = [t for t in raw if not 0 <= t < self.vocab_size]
        if bad:
            raise _BadRequest(f"token_id(s) {bad[:8]} in logprob_token_ids contain out-of-vocab token ids. Vocabulary "
                              f"size: {self.vocab_size} (ids must lie in [0, {self.vocab_size}))",
                              param="logprob_token_ids")
        return tuple(raw)

    def bias(self, raw) -> dict[int, float]:
        """``logit_bias`` as {token id: bias}: decimal-id keys, each id once, finite biases within the limit."""
        if not isinstance(raw, dict):
            raise _BadRequest(f"logit_bias must map token ids to biases; got {type(raw).__name__}", param="logit_bias")
        bias: dict[int, float] = {}
        names: dict[int, str] = {}
        for key, value in raw.items():
            if not isinstance(key, str) or not _DECIMAL.fullmatch(key):
                raise _BadRequest(f"logit_bias keys must be decimal token ids such as \"7\"; got {key!r}",
                                  param="logit_bias")
            token = int(key)
            if token in names:
                raise _BadRequest(f"logit_bias names token id {token} twice ({names[token]!r} and {key!r}); name each "
                                  "token once", param="logit_bias")
            if not 0 <= token < self.vocab_size:
                raise _BadRequest(f"logit_bias names token id {token}, outside the vocabulary [0, {self.vocab_size})",
                                  param="logit_bias")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _BadRequest(f"logit_bias[{key!r}] must be a finite number; got {value!r}", param="logit_bias")
            if abs(value) > self.bias_limit:
                raise _BadRequest(f"logit_bias[{key!r}] must lie in [-{self.bias_limit:g}, {self.bias_limit:g}]; "
                                  f"got {value}", param="logit_bias")
            bias[token], names[token] = float(value), key
        return bias

    # -- the model -----------------------------------------------------------------------------
    def logits(self, prompt: tuple[int, ...]) -> np.ndarray:
        """Mean-centred logits of the next token after ``prompt``: (V,) float64, through the LRU cache."""
        with self.model_lock:
            row = self.memo.get(prompt)
            if row is not None:
                self.memo.move_to_end(prompt)
                with self.lock:
                    self.stats["cache_hits"] += 1
                return row
            try:
                out = self.model.logits(torch.tensor([prompt], dtype=torch.long).reshape(1, len(prompt)))  # (1, V)
            except ValueError as err:
                raise _BadRequest(f"the model refused the prompt: {err}", param="prompt") from None
            row = out[0].detach().to("cpu", torch.float64).numpy()
            with self.lock:
                self.stats["forward"] += 1
            if self.cache_size:
                self.memo[prompt] = row
                if len(self.memo) > self.cache_size:
                    self.memo.popitem(last=False)
            return row

    def complete(self, body: dict) -> dict:
        with self.lock:
            self.stats["completions"] += 1
            number = self.stats["completions"]
        self._faults_before(number)
        self.check_model_name(body.get("model"))
        prompts = self.prompts(body.get("prompt"))
        k, bias, token_ids = self.options(body)
        choices, prompt_tokens = [], 0
        for index, prompt in enumerate(prompts):
            choices.append(self._choice(index, prompt, k, bias, token_ids))
            prompt_tokens += len(prompt)
        return {"id": f"cmpl-{number}", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model"), "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(prompts),
                          "total_tokens": prompt_tokens + len(prompts)}}

    def _choice(self, index: int, prompt, k: int | None, bias: dict[int, float], token_ids=None) -> dict:
        """The ``index``-th choice: the completion (argmax of the biased logits) and its log-probabilities."""
        logits = self.logits(prompt)
        shift = np.zeros(self.vocab_size)
        if bias:
            shift[list(bias)] = list(bias.values())
        biased = logits + shift
        logprobs = self._noisy(_log_softmax(logits if self.faults.ignore_bias else biased), prompt, k, bias)  # (V,)
        chosen = int(np.argmax(biased))
        texts = self.faults.token_texts
        name = token_name if texts is None else texts.__getitem__
        choice = {"index": index, "text": name(chosen), "finish_reason": "length", "logprobs": None}
        if k is not None:
            if token_ids is None:
                count = max(0, min(k, self.vocab_size) - self.faults.drop_tokens)
                order = np.argsort(-logprobs, kind="stable")[:count]  # ties to the smaller id
            else:  # vLLM: the completion's token first, then the ids named; drop_tokens drops the last ids
                named = list(dict.fromkeys(token_ids))
                order = [chosen, *named[: max(0, len(named) - self.faults.drop_tokens)]]
            top: dict[str, float] = {}
            for t in order:  # two ids with one text collapse into one entry (the likelier one's)
                top.setdefault(name(int(t)), float(logprobs[t]))
            choice["logprobs"] = {"tokens": [name(chosen)], "token_logprobs": [float(logprobs[chosen])],
                                  "top_logprobs": [top], "text_offset": [0]}
        return choice

    def _noisy(self, logprobs: np.ndarray, prompt, k, bias: dict[int, float]) -> np.ndarray:
        """``logprobs`` with the fault's noise (fresh per request, or drawn from the request itself)."""
        f = self.faults
        if not f.noise or tuple(prompt) in f.honest_prompts:
            return logprobs
        if f.repeatable_noise:
            digest = hashlib.sha256(repr((f.seed, tuple(prompt), k, sorted(bias.items()))).encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            return logprobs + rng.normal(0.0, f.noise, size=logprobs.shape)
        with self.lock:
            return logprobs + self.rng.normal(0.0, f.noise, size=logprobs.shape)

    def _faults_before(self, n: int) -> None:
        if n <= self.faults.rate_limit:
            raise _BadRequest("Rate limit reached (ServerFaults.rate_limit)", status=429, kind="rate_limit_error",
                              code="rate_limit_exceeded", headers={"retry-after": "0"})
        if n <= self.faults.rate_limit + self.faults.unavailable:
            raise _BadRequest("The server is overloaded (ServerFaults.unavailable)", status=503, kind="server_error")


#: Fields this server accepts with the values that change nothing here (the first is named in errors),
#: and why other values are refused. Every other field except _FIELDS is refused as unknown.
_NEUTRAL = {
    "temperature": ((0, None), "answers deterministically: the argmax, with the log-probabilities at temperature 1"),
    "top_p": ((1, None), "does not sample"),
    "seed": ((None,), "does not sample"),
    "presence_penalty": ((0, None), "applies no penalties"),
    "frequency_penalty": ((0, None), "applies no penalties"),
    "repetition_penalty": ((1, None), "applies no penalties"),
    "prompt_logprobs": ((None,), "returns the next token's log-probabilities only"),
    "stop": ((None, []), "generates one token only"),
    "suffix": ((None,), "has no insertion mode"),
    "return_tokens_as_token_ids": ((True, None), "always names tokens token_id:N"),
}
_FIELDS = ("model", "prompt", "max_tokens", "logprobs", "logit_bias", "logprob_token_ids", "n", "best_of", "stream",
           "echo", "user")


def _neutral(value, allowed) -> bool:
    """``value`` is one of ``allowed`` (a bool matches a bool only, a number a number only)."""
    return any(value is a or (a is not None and isinstance(value, bool) == isinstance(a, bool)
                              and type(value) in (bool, int, float, list) and value == a) for a in allowed)


def _refuse_unsupported(body: dict) -> None:
    """A 400 naming the first field this server does not implement (vLLM's dialect, or a refusal)."""
    for key, value in body.items():
        if key in _FIELDS:
            continue
        if key not in _NEUTRAL:
            raise _BadRequest(f"unknown field {key!r}: this server implements {', '.join(_FIELDS[:5])} and the "
                              f"neutral values of {', '.join(_NEUTRAL)}; it refuses what it would otherwise ignore",
                              param=key, code="unsupported_field")
        allowed, why = _NEUTRAL[key]
        if not _neutral(value, allowed):
            raise _BadRequest(f"{key}={value!r} is not supported: this server {why}; send {key}={allowed[0]!r} or "
                              "leave it out", param=key, code="unsupported_field")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    top = np.max(x)
    return x - (top + np.log(np.sum(np.exp(x - top))))


def _parse_body(raw: bytes, content_type: str | None):
    """The request body as a dict, or the _BadRequest that says why it is not one."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        return _BadRequest(f"Content-Type must be application/json; got {kind or 'none'!r}", param="body")
    if not raw.strip():
        return _BadRequest("request body is empty; send a JSON object such as {\"model\": ..., \"prompt\": [0, 1]}",
                           param="body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return _BadRequest(f"request body is not UTF-8 (undecodable byte at offset {err.start})", param="body")
    try:
        body = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        return _BadRequest("request body nests JSON deeper than this server reads; send a flat completion request",
                           param="body")
    except _BadRequest as err:
        return err
    except ValueError as err:
        return _BadRequest(f"request body is not valid JSON: {err}", param="body")
    if not isinstance(body, dict):
        return _BadRequest(f"request body must be a JSON object; got a JSON {type(body).__name__}", param="body")
    return body


def _unique_keys(pairs: list) -> dict:
    """json's object hook: an object that names one key twice is refused (the last would win silently)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _BadRequest(f"request body names the key {key!r} twice in one object; name each key once",
                              param=key)
        out[key] = value
    return out


async def _read_body(request, limit: int) -> bytes:
    """The body's bytes, refused with 413 as soon as it is longer than ``limit`` (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BadRequest(f"request body of {int(declared)} bytes is larger than this server's limit of {limit} bytes "
                          "(max_body_bytes)", status=413, code="request_too_large", param="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadRequest(f"request body is larger than this server's limit of {limit} bytes (max_body_bytes)",
                              status=413, code="request_too_large", param="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _checked_options(model, name, aliases, top_logprobs_limit, bias_limit, cache_size, api_key, faults,
                     limits: dict) -> tuple:
    """serve_app's arguments, validated: (name, aliases, k limit, bias limit, cache size, _Limits)."""
    check_model("model", model, needs=("vocab_size", "horizon", "logits"))
    if name is None:
        name = getattr(model, "name", None) or type(model).__name__.lower()
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string; got {name!r}")
    if isinstance(aliases, str) or not all(isinstance(a, str) and a for a in aliases):
        raise TypeError(f"aliases must be a sequence of non-empty strings; got {aliases!r}")
    top_logprobs_limit = check_int("top_logprobs_limit", top_logprobs_limit, minimum=1)
    bias_limit = check_real("bias_limit", bias_limit, low=0.0, low_open=True)
    if cache_size is None:
        cache_size = max(1, min(4096, _CACHE_BYTES // (8 * int(model.vocab_size))))
    cache_size = check_int("cache_size", cache_size, minimum=0)
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        raise TypeError(f"api_key must be a non-empty string or None; got {api_key!r}")
    if faults is not None and not isinstance(faults, ServerFaults):
        raise TypeError(f"faults must be a ServerFaults or None; got {type(faults).__name__}")
    bounds = _Limits(*(check_int(key, limits[key], minimum=1)
                       for key in ("max_body_bytes", "max_prompts", "max_prompt_tokens")))
    return name, tuple(aliases), top_logprobs_limit, bias_limit, cache_size, bounds


def serve_app(model, *, name: str | None = None, top_logprobs_limit: int = 20, bias_limit: float = 100.0,
              cache_size: int | None = None, api_key: str | None = None, faults: ServerFaults | None = None,
              aliases=(), max_body_bytes: int = MAX_BODY_BYTES, max_prompts: int = MAX_PROMPTS,
              max_prompt_tokens: int = MAX_PROMPT_TOKENS):
    """An OpenAI-compatible FastAPI app serving ``model`` (module docstring).

    Parameters
    ----------
    model : LanguageModel
        Any logitrank model (synthetic ISANs, the tiny GPT, Hugging Face models, …).
    name : str, optional
        The model's name in requests; default ``model.name``, else the class name in lower case.
    aliases : sequence of str, optional
        Further names the model answers to (``logitrank serve --model tiny`` serves ``tiny@step1500``
        as ``tiny`` too); each is listed in ``/v1/models`` with ``root`` the canonical name.
    top_logprobs_limit : int >= 1
        Largest ``logprobs`` accepted (OpenAI-style servers: 20).
    bias_limit : float > 0
        Largest |logit_bias| accepted (OpenAI-style servers: 100).
    cache_size : int >= 0, optional
        Prompts whose logits are kept (LRU); 0 disables the prefix cache. Default: as many as fit in
        256 MiB (8·V bytes each: 4096 prompts of the tiny model at most, 682 of SmolLM2's V = 49152).
    api_key : str, optional
        When given, requests must carry ``Authorization: Bearer <api_key>`` (else 401).
    faults : ServerFaults, optional
        Misbehaviour for testing clients.
    max_body_bytes, max_prompts, max_prompt_tokens : int >= 1
        Limits of one request: its body (413 above it, refused while it streams in), its prompts and
        each prompt's tokens (400 above them; the model's own context limit applies too).

    Returns
    -------
    fastapi.FastAPI, with ``app.state.stats`` (requests, completions, forward passes, cache hits)
    and ``app.state.engine``.
    """
    try:
        from fastapi import FastAPI
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("serve_app needs fastapi and uvicorn: pip install 'logitrank[api]'") from err
    limits = {"max_body_bytes": max_body_bytes, "max_prompts": max_prompts, "max_prompt_tokens": max_prompt_tokens}
    name, aliases, k_limit, bias_limit, cache_size, bounds = _checked_options(
        model, name, aliases, top_logprobs_limit, bias_limit, cache_size, api_key, faults, limits)
    engine = _Engine(model, name, k_limit, bias_limit, cache_size, faults, aliases, bounds)
    app = FastAPI(title=f"logitrank: {name}", docs_url=None, redoc_url=None)
    app.state.engine, app.state.stats = engine, engine.stats
    _add_error_handlers(app)
    _add_routes(app, engine, api_key)
    return app


def _error(err: _BadRequest):
    from fastapi.responses import JSONResponse

    body = {"error": {"message": err.message, "type": err.kind, "param": err.param, "code": err.code}}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def _add_error_handlers(app) -> None:
    """Every error in the OpenAI form: ours, FastAPI's validation errors, and unknown routes or methods."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(_BadRequest)
    async def _bad(request, err: _BadRequest):
        return _error(err)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(_BadRequest(f"invalid request{' at ' + where if where else ''}: {first.get('msg', err)}",
                                  param=where or None))

    @app.exception_handler(HTTPException)
    async def _http(request, err: HTTPException):
        route = f"{request.method} {request.url.path}"
        if err.status_code == 404:
            message, code = f"Invalid URL ({route}): this server serves {_ROUTES}", "unknown_url"
        elif err.status_code == 405:
            message, code = f"Method not allowed ({route}): this server serves {_ROUTES}", "method_not_allowed"
        else:
            message, code = f"{route}: {err.detail}", None
        return _error(_BadRequest(message, status=err.status_code, code=code))


def _add_routes(app, engine: _Engine, api_key: str | None) -> None:
    """The middleware (request count, API key) and the three endpoints."""
    from fastapi import Request
    from starlette.concurrency import run_in_threadpool

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        engine.stats["requests"] += 1  # the event loop runs middleware one request at a time
        if (api_key is not None and request.url.path != "/health"
                and request.headers.get("authorization") != f"Bearer {api_key}"):
            return _error(_BadRequest("Incorrect API key provided", status=401, kind="invalid_request_error",
                                      code="invalid_api_key"))
        return await call_next(request)

    @app.get("/health")
    def health():
        from fastapi.responses import Response

        return Response(status_code=200)  # as vLLM: an empty 200 once the model is served

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [engine.card(n) for n in engine.names]}

    @app.get("/v1/models/{model_name:path}")
    def model_card(model_name: str) -> dict:
        engine.check_model_name(model_name)
        return engine.card(model_name)

    async def completions(request) -> dict:
        raw = await _read_body(request, engine.limits.body_bytes)
        body = await run_in_threadpool(_parse_body, raw, request.headers.get("content-type"))
        if isinstance(body, _BadRequest):
            raise body
        return await run_in_threadpool(engine.complete, body)

    # the class itself, not the string that `from __future__ import annotations` leaves (FastAPI resolves
    # string annotations in this module's globals, where fastapi is not imported)
    completions.__annotations__["request"] = Request
    app.post("/v1/completions")(completions)


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (``port=0``: a free one); OSError (gaierror
    for a host that does not resolve) when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP,
    # and without it every keep-alive response waits ~40 ms (Nagle against the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def running_server(app, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yield its base URL (``http://host:port/v1``).

    ``port=0`` takes a free port. The server stops when the block exits.

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> with running_server(serve_app(random_isan(3, 4, 2, generator=0), name="isan")) as url:
    ...     url.startswith("http://127.0.0.1:")
    True
    """
    try:
        import uvicorn
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("running_server needs uvicorn: pip install 'logitrank[api]'") from err
    port = check_int("port", port, minimum=0, maximum=65535)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=bound, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn:{bound}")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the server on {host}:{bound} did not start within {timeout:g} s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def serve(model, *, host: str = "127.0.0.1", port: int = 8000, sock: socket.socket | None = None, **options) -> None:
    """Serve ``model`` on ``host:port`` (or on the bound socket ``sock``) until interrupted (``logitrank
    serve``); ``options`` go to :func:`serve_app`. Raises OSError when ``host:port`` cannot be bound."""
    import uvicorn

    port = check_int("port", port, minimum=0, maximum=65535)
    app = serve_app(model, **options)
    sock = _bind(host, port) if sock is None else sock
    bound = sock.getsockname()[1]
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=bound, log_level="info")).run(sockets=[sock])
    finally:
        sock.close()
