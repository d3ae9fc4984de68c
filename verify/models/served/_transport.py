"""One request to an OpenAI-compatible completions endpoint: asked once, retried, checked, cached, counted.

:class:`Transport` owns the official ``openai`` client (its own retries off: the loop here retries
rate limits (429), connection failures, timeouts and 5xx with exponential backoff, obeying
``Retry-After`` up to ``backoff_max``), the token-name map, the in-memory and on-disk answer
caches, the cost counters, and the probe that refuses an inconsistent server. Every answer is
checked before use: at least min(k, V) log-probabilities, each token named exactly once, every
value a log-probability.

What is served is pinned by a *fingerprint*: the answers to :func:`fingerprint_prompts` (a few fixed
prompts), asked once per client. With an on-disk cache they are compared with those stored beside
it, so a cache of another served model is refused (:class:`APICacheError`). While the client runs,
a random sample of the paid requests (``spot_check_rate``) is asked again, repeated or re-biased,
and compared before the answer is used (:meth:`Transport.spot_check`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import threading
import time
from dataclasses import dataclass

from ._cache import AnswerCache, canonical_request
from ._errors import (
    APICacheError,
    InconsistentServerError,
    RequestRefusedError,
    ServerUnreachableError,
)
from ._settings import APISettings
from ._tokens import TokenMap

__all__ = ["Answer", "Transport", "fingerprint_prompts", "resolve_bos"]

#: the numbers in a server's refusal of logprobs above its limit (vLLM's and logitrank's words)
_LOGPROBS_LIMIT = re.compile(r"(?:greater than max allowed:?|logprobs must be <=)\s*(\d+)")


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


def fingerprint_prompts(vocab_size: int, max_prompt: int | None) -> list[tuple[int, ...]]:
    """The fixed prompts whose answers pin what is served: (0,), (V−1,) and (V−1, 0), those that fit.

    >>> fingerprint_prompts(5, None), fingerprint_prompts(5, 1), fingerprint_prompts(5, 0)
    ([(0,), (4,), (4, 0)], [(0,), (4,)], [()])
    """
    last = vocab_size - 1
    fits = [p for p in dict.fromkeys([(0,), (last,), (last, 0)]) if max_prompt is None or len(p) <= max_prompt]
    return fits or [()]


def resolve_bos(bos, card: dict | None, base_url: str, card_missing: str | None = None) -> tuple:
    """(start token the client prepends or None, error of the convention or None) from the ``bos`` setting
    and the model card. ``bos="server"`` trusts a card that says ``adds_bos: true``; a card that says nothing
    (vLLM's) gives the error, raised once the client is built. ``bos=<id>`` against a card that says the
    server adds one is refused here (ValueError): the start token would be doubled.

    >>> resolve_bos("server", {"adds_bos": True}, "u"), resolve_bos(0, {}, "u"), resolve_bos(None, None, "u")
    ((None, None), (0, None), (None, None))
    """
    adds = (card or {}).get("adds_bos")
    if bos == "server":
        if adds is True:
            return None, None
        said = ("has no model card" if card is None else
                "says adds_bos=false" if adds is False else "says nothing about a start token (no adds_bos)")
        return None, (f"bos='server' (the default) trusts the server to prepend the model's start token, but {base_url} "
                      f"{said}{f' ({card_missing})' if card is None and card_missing else ''}. vLLM adds no start token "
                      "(BOS) to token-id prompts, so the served model would answer another conditional than the "
                      "local one: pass bos=<start token id> (SmolLM2: 0) to have the client prepend it to every "
                      "prompt, or bos=None to send prompts as they are")
    if bos is not None and adds is True:
        raise ValueError(f"bos={bos} asks the client to prepend a start token, but the model card of {base_url} says "
                         f"adds_bos=true (the server prepends bos_token_id={(card or {}).get('bos_token_id')} itself), "
                         "so the start token would be doubled; pass bos='server' (the default) or bos=None")
    return bos, None


def _refusal_hint(message: str, k: int) -> str:
    """What to do about a 4xx whose message is known: logprobs above the server's limit."""
    found = _LOGPROBS_LIMIT.search(message)
    if found is None or "logprobs" not in message.lower():
        return ""
    n = int(found.group(1))
    return f"; pass k<={n} or start vLLM with --max-logprobs {max(k, n)}"


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
        self.calls = self.cached = self.retries = self.tokens = self.probe_calls = self.spot_checks = 0
        self._memo: dict[tuple, dict[int, float]] = {}
        self._draw = random.Random(settings.spot_check_seed)  # which paid requests are spot-checked
        self._fingerprint: list | None = None
        self._card_missing: str | None = None
        try:
            self.card = self._model_card()
            self.vocab_size = self._from_card("vocab_size", settings.vocab_size, required=True)
            self.horizon = self._from_card("horizon", settings.horizon, required=False)
            self.max_prompt = self.card.get("max_prompt_tokens") if self.card else None
            if self.horizon is not None:
                self.max_prompt = self.horizon - 1 if self.max_prompt is None else min(self.max_prompt, self.horizon - 1)
            self._check_limits()
            self.bos, self.bos_error = resolve_bos(settings.bos, self.card, settings.base_url, self._card_missing)
            if self.bos is not None and self.max_prompt is not None:
                self.max_prompt -= 1  # the client's start token takes one place of the server's limit
            self.tokens_map = TokenMap(self.vocab_size, vocab=vocab)
            if self.bos_error is not None and settings.cache_dir is not None:
                raise ValueError(self.bos_error)  # before the fingerprint stores answers of another conditional
        except BaseException:
            self.client.close()
            raise
        self.disk = (None if settings.cache_dir is None else
                     AnswerCache(settings.cache_dir, settings.scope, vocab_size=self.vocab_size))
        if self.disk is not None:
            try:
                self._check_fingerprint()
            except BaseException:
                self.client.close()
                raise

    # -- the model card ------------------------------------------------------------------------
    def _model_card(self) -> dict | None:
        """The served model's card from ``GET /v1/models`` (None when the server has no such endpoint)."""
        openai = _openai()
        s = self.settings
        try:
            page = self._retrying(lambda: self.client.models.list(), "GET /models")
        except RequestRefusedError as err:
            if isinstance(err.__cause__, openai.NotFoundError):
                hint = "" if s.base_url.endswith("/v1") else f"; is base_url missing /v1 (e.g. {s.base_url}/v1)?"
                self._card_missing = f"GET {s.base_url}/models gave HTTP 404 ({_message(err.__cause__)}){hint}"
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
        if served is None and required and self._card_missing is not None:
            raise ValueError(f"the server has no model card: {self._card_missing} Otherwise pass {field}= (the served "
                             f"model's {field})")
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
            due = cached and self.settings.spot_check_rate > 0 and self._draw.random() < self.settings.spot_check_rate
        if due:
            self.spot_check(prompt, k, bias, top)  # before the answer is used or stored
        with self.lock:
            if cached:
                self._memo[memo_key] = top
        if cached and self.disk is not None:
            self.disk.put(request, top)
        return Answer(top, True, tokens)

    def _complete(self, prompt, k: int, bias: dict[int, float]) -> tuple[dict[int, float], int]:
        s = self.settings
        start = [] if self.bos is None else [self.bos]
        kwargs = {"model": s.model, "prompt": start + [int(t) for t in prompt], "max_tokens": 1, "logprobs": k,
                  "temperature": 0, "extra_body": {"return_tokens_as_token_ids": True}}
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
                    raise RequestRefusedError(f"{s.base_url} refused {what} with HTTP {status}: {_message(err)}"
                                              f"{_refusal_hint(_message(err), s.k)}") from err
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

    # -- what is served: the fingerprint and the spot checks --------------------------------------
    def fingerprint(self) -> list:
        """The answers to :func:`fingerprint_prompts` (asked once per client, uncached, counted as probe
        calls) as [[prompt, [[id, logprob], ...]], ...] in id order."""
        if self._fingerprint is None:
            k, calls = min(self.settings.k, self.vocab_size), self.calls
            try:
                answers = [[list(p), sorted([t, lp] for t, lp in self.ask(p, k, {}, cached=False).top.items())]
                           for p in fingerprint_prompts(self.vocab_size, self.max_prompt)]
            finally:
                with self.lock:
                    self.probe_calls += self.calls - calls
            self._fingerprint = answers
        return self._fingerprint

    def fingerprint_digest(self) -> str:
        """sha256 (hex, 16) of the fingerprint, log-probabilities rounded to 3 decimals (for keys of caches)."""
        rounded = [[p, [[t, round(lp, 3)] for t, lp in top]] for p, top in self.fingerprint()]
        return hashlib.sha256(json.dumps(rounded).encode()).hexdigest()[:16]

    def _check_fingerprint(self) -> None:
        """Refuse a disk cache whose stored fingerprint differs from what the server answers now; store it
        when the cache has none yet."""
        stored, problem = self.disk.fingerprint()
        where = f"answer cache {str(self.disk.folder)!r} (scope {self.settings.scope!r})"
        if problem is not None:
            raise APICacheError(f"{where}: its fingerprint file {self.disk.fingerprint_path.name} is damaged "
                                f"({problem}), so its answers cannot be tied to a served model; delete the folder or "
                                "use another cache_dir")
        now = self.fingerprint()
        if stored is None:
            self.disk.put_fingerprint(now)
            return
        difference = _fingerprint_difference(stored, now, 2 * self.settings.logprob_error)
        if difference is not None:
            raise APICacheError(
                f"{where} holds answers of another served model: {difference}; the server now serves another model "
                "under this URL and name. Use another cache_dir or cache_scope for it, or delete the folder")

    def spot_check(self, prompt, k: int, bias: dict[int, float], top: dict[int, float]) -> None:
        """Ask the request again, as it was or re-biased (:meth:`_rebiased`), and compare with ``top``;
        :class:`InconsistentServerError` when the answers disagree beyond the stated error."""
        s = self.settings
        with self.lock:
            rebias = len(top) >= 2 and self._draw.random() < 0.5
        change = self._rebiased(top, bias) if rebias else {}
        again, tokens = self._complete(prompt, k, {**bias, **change})
        with self.lock:  # counted apart from calls: what the queries cost stays comparable across rates
            self.spot_checks += 1
            self.tokens += tokens
        gap, tol = (_moved_gap(top, again, bias, change), 4 * s.logprob_error) if change else (
            _repeat_gap(top, again), 2 * s.logprob_error)
        if gap > tol:
            kind = f"the request re-biased ({len(change)} token moved)" if change else "the request repeated"
            raise InconsistentServerError(
                f"{s.base_url} failed a spot check (one in {1 / s.spot_check_rate:.3g} paid requests is asked again): "
                f"{kind} (prompt {list(prompt)[:8]}{'…' if len(prompt) > 8 else ''}, logprobs={k}) answered "
                f"{gap:.3g} away from the first answer, more than {tol:.3g} (from logprob_error = "
                f"{s.logprob_error:g}); the server's answers cannot be trusted for logit recovery")

    def _rebiased(self, top: dict[int, float], bias: dict[int, float]) -> dict[int, float]:
        """{token: new bias} for one returned token other than the top one, moved by up to 1 within the limit
        (up when it can be: a raised token stays in the top-k; else down)."""
        B, first = self.settings.bias_limit, min(top, key=lambda t: (-top[t], t))
        others = sorted(t for t in top if t != first)
        with self.lock:
            t = self._draw.choice(others)
        b = bias.get(t, 0.0)
        step = min(1.0, B - b) if b < B else -min(1.0, B + b)
        return {t: b + step} if step else {}

    def close(self) -> None:
        self.client.close()


def _fingerprint_difference(stored: list, now: list, tol: float) -> str | None:
    """Where two fingerprints differ by more than ``tol`` (one line), or None."""
    then = {tuple(p): {int(t): float(lp) for t, lp in top} for p, top in stored}
    for p, top in now:
        old, new = then.get(tuple(p)), {int(t): float(lp) for t, lp in top}
        if old is None:
            return f"the fingerprint prompt {list(p)} was not asked when the cache was made"
        if set(old) != set(new):
            return f"after the prompt {list(p)} the top tokens were {sorted(old)} and are now {sorted(new)}"
        worst = max(new, key=lambda t: abs(new[t] - old[t]))
        if abs(new[worst] - old[worst]) > tol:
            return (f"after the prompt {list(p)} token {worst} had log-probability {old[worst]:.6g} and now has "
                    f"{new[worst]:.6g}")
    return None


def _repeat_gap(first: dict[int, float], again: dict[int, float]) -> float:
    """Largest |difference| of the log-probabilities of a repeated request (inf when the tokens differ)."""
    if set(first) != set(again):
        return math.inf
    return max(abs(first[t] - again[t]) for t in first)


def _moved_gap(first: dict[int, float], again: dict[int, float], bias: dict[int, float],
               change: dict[int, float]) -> float:
    """Largest error of lp(z) − lp(r) after re-biasing, against the bias change it must show exactly (r the
    top token of ``first``; tokens missing from either answer are skipped, the top one must stay)."""
    r = min(first, key=lambda t: (-first[t], t))
    if r not in again:
        return math.inf
    gaps = [abs((again[z] - again[r]) - (first[z] - first[r]) - (change.get(z, bias.get(z, 0.0)) - bias.get(z, 0.0)))
            for z in first if z != r and z in again]
    return max(gaps, default=0.0)


def _message(err) -> str:
    """The server's own words: the OpenAI error's message, else the body quoted (a text body too), one line."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return " ".join(str(inner["message"]).split())
        return f"body {json.dumps(body)[:300]!r}"
    if isinstance(body, str) and body.strip():
        text = " ".join(body.split())
        return f"body {text[:300] + ('…' if len(text) > 300 else '')!r}"
    return str(getattr(err, "message", err)) + " (empty body)"


def _retry_after(err) -> float | None:
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None
