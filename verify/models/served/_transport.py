"""One request to an OpenAI-compatible completions endpoint: asked once, retried, checked, cached, counted.

:class:`Transport` owns the official ``openai`` client (its own retries off: the loop here retries
rate limits (429), connection failures, timeouts and 5xx with exponential backoff, obeying
``Retry-After`` up to ``backoff_max``), the token-name map, the in-memory and on-disk answer
caches, the cost counters, and the probe that refuses an inconsistent server. Every answer is
checked before use: at least min(k, V) log-probabilities, each token named exactly once, every
value a log-probability.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass

from ._cache import AnswerCache, canonical_request
from ._errors import (
    InconsistentServerError,
    RequestRefusedError,
    ServerUnreachableError,
)
from ._settings import APISettings
from ._tokens import TokenMap

__all__ = ["Answer", "Transport"]


@dataclass(frozen=True)
class Answer:
    """The top log-probabilities of one request, keyed by token id, and what it cost.

    Attributes
    ----------
    top : dict[int, float]
        Token id → log-probability after the bias, at least min(k, V) entries.
    paid : bool
        True when the server answered (False: from the memory or disk cache).
    tokens : int
        Tokens billed for it (prompt + completion; 0 when cached).
    """

    top: dict[int, float]
    paid: bool
    tokens: int

    def argmax(self) -> int:
        """The returned token with the largest log-probability (the smaller id on a tie)."""
        return min(self.top, key=lambda t: (-self.top[t], t))


def _openai():
    try:
        import openai
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("APIModel needs the openai client: pip install 'logitrank[api]'") from err
    return openai


class Transport:
    """Requests to one served model (module docstring). Thread-safe.

    Parameters
    ----------
    settings : APISettings
    vocab : sequence of str, optional
        The server's token texts, for servers that do not name tokens ``token_id:N``.
    """

    def __init__(self, settings: APISettings, *, vocab=None):
        openai = _openai()
        self.settings = settings
        key = os.environ.get(settings.api_key_env)
        if not key:
            raise ValueError(f"the API key is read from the environment variable {settings.api_key_env}, which is not "
                             "set; set it (any value, e.g. EMPTY, for a local server without keys) or pass "
                             "api_key_env= naming another variable")
        self.client = openai.OpenAI(api_key=key, base_url=settings.base_url, max_retries=0, timeout=settings.timeout)
        self.lock = threading.Lock()
        self.calls = self.cached = self.retries = self.tokens = self.probe_calls = 0
        self._memo: dict[tuple, dict[int, float]] = {}
        try:
            self.card = self._model_card()
            self.vocab_size = self._from_card("vocab_size", settings.vocab_size, required=True)
            self.horizon = self._from_card("horizon", settings.horizon, required=False)
            self.max_prompt = self.card.get("max_prompt_tokens") if self.card else None
            if self.horizon is not None:
                self.max_prompt = self.horizon - 1 if self.max_prompt is None else min(self.max_prompt, self.horizon - 1)
            self._check_limits()
            self.tokens_map = TokenMap(self.vocab_size, vocab=vocab)
        except BaseException:
            self.client.close()
            raise
        self.disk = (None if settings.cache_dir is None else
                     AnswerCache(settings.cache_dir, settings.scope, vocab_size=self.vocab_size))

    # -- the model card ------------------------------------------------------------------------
    def _model_card(self) -> dict | None:
        """The served model's card from ``GET /v1/models`` (None when the server has no such endpoint)."""
        openai = _openai()
        s = self.settings
        try:
            page = self._retrying(lambda: self.client.models.list(), "GET /models")
        except RequestRefusedError as err:
            if isinstance(err.__cause__, openai.NotFoundError):
                return None
            raise
        cards = [m.model_dump() for m in page.data]
        names = [c.get("id") for c in cards]
        if s.model not in names:
            raise ValueError(f"model={s.model!r} is not served at {s.base_url}; it serves {names} (GET /models)")
        return cards[names.index(s.model)]

    def _from_card(self, field: str, given: int | None, *, required: bool) -> int | None:
        served = None if self.card is None else self.card.get(field)
        if given is not None:
            if served is not None and int(served) != given:
                raise ValueError(f"{field}={given} was given, but the server's model card says {field}={served}")
            return given
        if served is None and required:
            raise ValueError(f"the server's model card has no {field}; pass {field}= (the served model's {field})")
        return None if served is None else int(served)

    def _check_limits(self) -> None:
        s, card = self.settings, self.card or {}
        limit = card.get("top_logprobs_limit")
        if limit is not None and s.k > limit:
            raise ValueError(f"k={s.k} is more than the server allows (top_logprobs_limit={limit} in its model card); "
                             f"pass k<={limit}")
        limit = card.get("bias_limit")
        if limit is not None and s.bias_limit > limit:
            raise ValueError(f"bias_limit={s.bias_limit:g} is more than the server allows (bias_limit={limit:g} in its "
                             f"model card); pass bias_limit<={limit:g}")

    # -- requests ------------------------------------------------------------------------------
    def ask(self, prompt: tuple[int, ...], k: int, bias: dict[int, float], *, cached: bool = True) -> Answer:
        """The top-``k`` log-probabilities after ``prompt`` with ``bias`` applied: from memory, from the
        disk cache (verified), or from the server (then stored). ``cached=False`` always asks the server
        and stores nothing (the consistency probe)."""
        request = canonical_request(prompt, k, bias)
        memo_key = (tuple(request["prompt"]), k, tuple(map(tuple, request["logit_bias"])))
        if cached:
            top = self._memo.get(memo_key)
            if top is None and self.disk is not None:
                top = self.disk.get(request)
            if top is not None:
                with self.lock:
                    self.cached += 1
                    self._memo[memo_key] = top
                return Answer(top, False, 0)
        top, tokens = self._complete(prompt, k, bias)
        with self.lock:
            self.calls += 1
            self.tokens += tokens
            if cached:
                self._memo[memo_key] = top
        if cached and self.disk is not None:
            self.disk.put(request, top)
        return Answer(top, True, tokens)

    def _complete(self, prompt, k: int, bias: dict[int, float]) -> tuple[dict[int, float], int]:
        s = self.settings
        kwargs = {"model": s.model, "prompt": [int(t) for t in prompt], "max_tokens": 1, "logprobs": k,
                  "temperature": 0}
        if bias:
            kwargs["logit_bias"] = {str(int(t)): float(b) for t, b in bias.items()}
        what = f"the completion request (prompt of {len(prompt)} tokens, logprobs={k}, {len(bias)} biased tokens)"
        response = self._retrying(lambda: self.client.completions.create(**kwargs), what)
        top = self._read(response, prompt, k)
        usage = getattr(response, "usage", None)
        tokens = int(usage.total_tokens) if usage is not None and usage.total_tokens is not None else len(prompt) + 1
        return top, tokens

    def _read(self, response, prompt, k: int) -> dict[int, float]:
        """Checked top log-probabilities of the one choice of ``response``."""
        base = self.settings.base_url
        choices = getattr(response, "choices", None) or []
        logprobs = choices[0].logprobs if choices else None
        tops = getattr(logprobs, "top_logprobs", None) if logprobs is not None else None
        if not tops or tops[0] is None:
            raise InconsistentServerError(f"{base} returned no top_logprobs for logprobs={k} (prompt {list(prompt)[:8]}"
                                          f"{'…' if len(prompt) > 8 else ''}); recovery needs them")
        top = self.tokens_map.to_ids(dict(tops[0]))
        want = min(k, self.vocab_size)
        if len(top) < want:
            raise InconsistentServerError(
                f"{base} returned {len(top)} log-probabilities for logprobs={k} (expected {want}); its top-k limit may "
                f"be below k, or it merges tokens with the same text; lower k (now {self.settings.k}) or serve token "
                "ids as names (vLLM: --return-tokens-as-token-ids)")
        bad = [(t, lp) for t, lp in top.items() if math.isnan(lp) or lp > 1e-6]
        if bad:
            raise InconsistentServerError(f"{base} returned {bad[0][1]!r} as the log-probability of token {bad[0][0]}; "
                                          "a log-probability is <= 0")
        return top

    def _retrying(self, call, what: str):
        """``call()``, retried with exponential backoff on 429, 5xx, timeouts and connection failures."""
        openai = _openai()
        s = self.settings
        attempt = 0
        while True:
            try:
                return call()
            except openai.APIStatusError as err:
                status = err.status_code
                if status != 429 and status < 500:
                    raise RequestRefusedError(f"{s.base_url} refused {what} with HTTP {status}: {_message(err)}") from err
                problem, after = f"HTTP {status}: {_message(err)}", _retry_after(err)
            except openai.APIConnectionError as err:  # APITimeoutError included
                problem, after = f"{type(err).__name__}: {err}", None
            if attempt >= s.max_retries:
                raise ServerUnreachableError(f"{s.base_url} did not answer {what} after {attempt + 1} tries (last: "
                                             f"{problem}); is the server running and reachable? (max_retries="
                                             f"{s.max_retries})")
            wait = min(s.backoff_max, s.backoff * 2**attempt)
            if after is not None:
                wait = min(s.backoff_max, max(wait, after))
            with self.lock:
                self.retries += 1
            time.sleep(wait)
            attempt += 1

    # -- the probe -----------------------------------------------------------------------------
    def probe(self) -> dict:
        """Refuse an inconsistent server (three uncached requests on one prompt).

        1. The same request twice must give the same tokens and log-probabilities to 2·logprob_error.
        2. Bias b = min(bias_limit, 8) on the second most likely token t₂ must move
           lp(t₂) − lp(t₁) by b to 4·logprob_error; unmoved means the server reports log-probabilities
           *before* logit_bias, which recovery cannot use.

        Returns the measured numbers: ``repeat_error`` and ``bias_moved`` (expected ``bias``).
        """
        s = self.settings
        tol = s.logprob_error
        prompt = (0,) if self.max_prompt is None or self.max_prompt >= 1 else ()
        k = min(s.k, self.vocab_size)
        calls = self.calls
        try:
            first = self.ask(prompt, k, {}, cached=False)
            again = self.ask(prompt, k, {}, cached=False)
            if set(first.top) != set(again.top):
                raise InconsistentServerError(f"{s.base_url} answered one request twice with different tokens "
                                              f"({sorted(first.top)} then {sorted(again.top)}); recovery needs a "
                                              "deterministic server")
            repeat = max(abs(first.top[t] - again.top[t]) for t in first.top)
            if repeat > 2 * tol:
                raise InconsistentServerError(
                    f"{s.base_url} answered one request twice with log-probabilities {repeat:.3g} apart, more than "
                    f"2·logprob_error = {2 * tol:.3g}; recovery needs a deterministic server (or raise logprob_error "
                    "to the server's real precision)")
            order = sorted(first.top, key=lambda t: (-first.top[t], t))
            t1, t2 = order[0], order[1]
            b = min(s.bias_limit, 8.0)
            biased = self.ask(prompt, k, {t2: b}, cached=False)
            if t1 not in biased.top or t2 not in biased.top:
                raise InconsistentServerError(f"{s.base_url} dropped a top token when token {t2} was biased by {b:g}")
            moved = (biased.top[t2] - biased.top[t1]) - (first.top[t2] - first.top[t1])
        finally:
            with self.lock:
                self.probe_calls += self.calls - calls
        if abs(moved) <= 4 * tol:
            raise InconsistentServerError(
                f"{s.base_url} returns log-probabilities before logit_bias is applied (a bias of {b:g} on token {t2} "
                f"moved lp({t2}) − lp({t1}) by {moved:.3g}); recovery needs them after the bias (vLLM: "
                "--logprobs-mode processed_logprobs; some hosted APIs stopped applying the bias to logprobs in 2024)")
        if abs(moved - b) > 4 * tol:
            raise InconsistentServerError(f"{s.base_url}: a bias of {b:g} on token {t2} moved lp({t2}) − lp({t1}) by "
                                          f"{moved:.6g}, not by {b:g}; the server does not apply logit_bias additively")
        return {"repeat_error": repeat, "bias": b, "bias_moved": moved}

    def close(self) -> None:
        self.client.close()


def _message(err) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(err, "message", err))


def _retry_after(err) -> float | None:
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None
