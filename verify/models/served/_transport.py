"""One request to an OpenAI-compatible completions endpoint: asked once, retried, checked, cached, counted.

:class:`Transport` owns the official ``openai`` client (its own retries off: the loop here retries
rate limits (429), connection failures, timeouts and 5xx with exponential backoff, obeying
``Retry-After`` up to ``backoff_max``), the token-name map, the in-memory and on-disk answer
caches, the cost counters, and the probe that refuses an inconsistent server. Every answer is
checked before use: at least min(k, V) log-probabilities (or every id named in ``logprob_token_ids``),
each token named exactly once, every
value a log-probability.

A request names one prompt or a batch of up to ``batch_limit`` prompts (answered in
``choices[i].index`` order), with ``logprobs=k`` and a ``logit_bias``, or with vLLM's
``logprob_token_ids`` (the log-probabilities of the ids named: :meth:`Transport.supports_token_ids`
asks once whether the server answers them). ``calls`` counts requests, so a batch of P prompts is
one call; each answer carries its share of the billed tokens.

What is served is pinned by a *fingerprint*: the answers to :func:`fingerprint_prompts` (a few fixed
prompts), asked once per client. With an on-disk cache they are compared with those stored beside
it, so a cache of another served model is refused (:class:`APICacheError`). While the client runs,
a random sample of the paid answers (``spot_check_rate``) is asked again, repeated or re-biased (the
sampled prompts of one request in one further request), and compared before the answers are used
(:meth:`Transport.spot_check`).
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

from ._cache import AnswerCache, canonical_request, default_cache_root
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
#: the number in a refusal of more logprob_token_ids than the server takes (vLLM's and logitrank's words)
_TOKEN_IDS_LIMIT = re.compile(r"logprob_token_ids of length \d+, which is greater than max allowed:?\s*(\d+)")


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
    """What to do about a 4xx whose message is known: logprobs, or logprob_token_ids, above the server's limit.

    >>> _refusal_hint("Requested logprob_token_ids of length 129, which is greater than max allowed: 128", 20)
    '; pass token_ids_limit<=128'
    """
    found = _TOKEN_IDS_LIMIT.search(message)
    if found is not None:
        return f"; pass token_ids_limit<={found.group(1)}"
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
            self.batch_limit = self._limit("max_prompts", settings.batch_prompts)
            self.token_ids_limit = self._limit("logprob_token_ids_limit", settings.token_ids_limit)
        except BaseException:
            self.client.close()
            raise
        self.disk: AnswerCache | None = None  # opened by open_cache, once the client trusts the server
        self.batches_refused = False
        self._token_ids: bool | None = None  # does the server answer logprob_token_ids? (asked once)
        self.token_ids_note: str | None = None
        self._probe_lock = threading.Lock()

    def _limit(self, field: str, setting: int) -> int:
        """``setting``, lowered to the model card's ``field`` when it has one."""
        served = (self.card or {}).get(field)
        return setting if served is None else max(1, min(setting, int(served)))

    def open_cache(self) -> None:
        """Open the on-disk answer cache of the settings (``cache_dir``), after checking its fingerprint."""
        s = self.settings
        folder = s.cache_dir
        if folder is True:
            root = default_cache_root()
            folder = None if root is None else root / f"served-{self.fingerprint_digest()}"
        if folder is None or folder is False:
            return
        self.disk = AnswerCache(folder, s.scope, vocab_size=self.vocab_size)
        self._check_fingerprint()

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
    def ask(self, prompt: tuple[int, ...], k: int, bias: dict[int, float], token_ids=None, *,
            cached: bool = True) -> Answer:
        """The top-``k`` log-probabilities after ``prompt`` with ``bias`` applied (or, with ``token_ids``, those
        of the ids named, vLLM's ``logprob_token_ids``): from memory, from the disk cache (verified), or from
        the server (then stored). ``cached=False`` always asks the server and stores nothing (the probes)."""
        return self.ask_many([prompt], k, bias, token_ids, cached=cached)[0]

    def ask_many(self, prompts: list[tuple[int, ...]], k: int, bias: dict[int, float], token_ids=None, *,
                 cached: bool = True) -> list[Answer]:
        """:meth:`ask` for several prompts with one ``k``, ``bias`` and ``token_ids``: (P,) prompts → P answers
        in order. The prompts not in the caches are sent ``batch_limit`` to a request."""
        requests = [canonical_request(p, k, bias, token_ids) for p in prompts]
        answers = [self._lookup(r) if cached else None for r in requests]
        todo = [i for i, a in enumerate(answers) if a is None]
        while todo:
            group, todo = todo[: self.batch_limit], todo[self.batch_limit :]
            fresh = self._paid([prompts[i] for i in group], k, bias, token_ids, cached=cached)
            for i, (top, tokens) in zip(group, fresh):
                answers[i] = Answer(top, True, tokens)
                if cached:
                    self._store(requests[i], top)
        return answers

    def _lookup(self, request: dict) -> Answer | None:
        key = _memo_key(request)
        top = self._memo.get(key)
        if top is None and self.disk is not None:
            top = self.disk.get(request)
        if top is None:
            return None
        with self.lock:
            self.cached += 1
            self._memo[key] = top
        return Answer(top, False, 0)

    def _store(self, request: dict, top: dict[int, float]) -> None:
        with self.lock:
            self._memo[_memo_key(request)] = top
        if self.disk is not None:
            self.disk.put(request, top)

    def _paid(self, prompts, k: int, bias: dict[int, float], token_ids, *, cached: bool) -> list[tuple[dict, int]]:
        """Ask the server (one request, or one per prompt where it refuses batches); spot-check a random
        ``spot_check_rate`` of the answers (one further request) before they are used or stored."""
        fresh = self._batch(prompts, k, bias, token_ids)
        rate = self.settings.spot_check_rate
        with self.lock:
            due = [i for i in range(len(prompts)) if cached and rate > 0 and self._draw.random() < rate]
        if due:
            self.spot_check([prompts[i] for i in due], k, bias, token_ids, [fresh[i][0] for i in due])
        return fresh

    def _batch(self, prompts, k: int, bias: dict[int, float], token_ids) -> list[tuple[dict, int]]:
        """One request for ``prompts``; where the server refuses a batch but answers its first prompt alone,
        every later request holds one prompt (``batches_refused``)."""
        try:
            return self._send(prompts, k, bias, token_ids)
        except RequestRefusedError:
            if len(prompts) == 1:
                raise
            first = self._send(prompts[:1], k, bias, token_ids)  # refused too: the request itself is, not the batch
            with self.lock:
                self.batch_limit, self.batches_refused = 1, True
            return first + [answer for p in prompts[1:] for answer in self._send([p], k, bias, token_ids)]

    def _send(self, prompts, k: int, bias: dict[int, float], token_ids, *,
              counter: str = "calls") -> list[tuple[dict[int, float], int]]:
        """One completions request for ``prompts`` → [(checked answer, tokens billed for it)] in prompt order;
        counts one request in ``counter`` ("calls" or "spot_checks") and its tokens."""
        s = self.settings
        start = [] if self.bos is None else [self.bos]
        sent = [start + [int(t) for t in p] for p in prompts]
        extra = {"return_tokens_as_token_ids": True}
        if token_ids is not None:
            extra["logprob_token_ids"] = [int(t) for t in token_ids]
        kwargs = {"model": s.model, "prompt": sent[0] if len(sent) == 1 else sent, "max_tokens": 1, "logprobs": k,
                  "temperature": 0, "extra_body": extra}
        if bias:
            kwargs["logit_bias"] = {str(int(t)): float(b) for t, b in bias.items()}
        what = _describe(prompts, k, bias, token_ids)
        response = self._retrying(lambda: self.client.completions.create(**kwargs), what)
        shares = [len(p) + 1 for p in sent]  # prompt + completion tokens of each prompt
        usage = getattr(response, "usage", None)
        total = int(usage.total_tokens) if usage is not None and usage.total_tokens is not None else sum(shares)
        shares[-1] += total - sum(shares)  # what the server billed, whole
        with self.lock:  # answered and billed, whether or not the answer passes the checks
            setattr(self, counter, getattr(self, counter) + 1)
            self.tokens += total
        return list(zip(self._read(response, prompts, k, token_ids), shares))

    def _read(self, response, prompts, k: int, token_ids) -> list[dict[int, float]]:
        """Checked log-probabilities of every choice of ``response``, in ``choices[i].index`` order."""
        base = self.settings.base_url
        choices = list(getattr(response, "choices", None) or [])
        order = sorted(range(len(choices)), key=lambda i: getattr(choices[i], "index", i))
        indices = [getattr(choices[i], "index", i) for i in order]
        if indices != list(range(len(prompts))):
            raise InconsistentServerError(f"{base} answered a request of {len(prompts)} prompts with choices indexed "
                                          f"{indices[:8]}{'…' if len(indices) > 8 else ''} (expected 0 … "
                                          f"{len(prompts) - 1}, one per prompt); pass batch_prompts=1")
        return [self._read_choice(choices[i], p, k, token_ids) for i, p in zip(order, prompts)]

    def _read_choice(self, choice, prompt, k: int, token_ids) -> dict[int, float]:
        """Checked log-probabilities of one choice: at least min(k, V), or exactly the ``token_ids`` asked."""
        base = self.settings.base_url
        logprobs = getattr(choice, "logprobs", None)
        tops = getattr(logprobs, "top_logprobs", None) if logprobs is not None else None
        where = f"prompt {list(prompt)[:8]}{'…' if len(prompt) > 8 else ''}"
        if not tops or tops[0] is None:
            raise InconsistentServerError(f"{base} returned no top_logprobs for logprobs={k} ({where}); recovery needs "
                                          "them")
        top = self.tokens_map.to_ids(dict(tops[0]))
        if token_ids is not None:
            missing = [t for t in token_ids if t not in top]
            if missing:
                raise InconsistentServerError(
                    f"{base} returned no log-probability for token {missing[0]} named in logprob_token_ids ({where}; "
                    f"{len(missing)} of {len(token_ids)} missing): it ignores the field; pass method='exact'")
            top = {int(t): top[int(t)] for t in token_ids}  # the completion's own token dropped
        elif len(top) < min(k, self.vocab_size):
            raise InconsistentServerError(
                f"{base} returned {len(top)} log-probabilities for logprobs={k} (expected {min(k, self.vocab_size)}); "
                f"its top-k limit may be below k, or it merges tokens with the same text; lower k (now "
                f"{self.settings.k}) or serve token ids as names (vLLM: --return-tokens-as-token-ids)")
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

    def spot_check(self, prompts, k: int, bias: dict[int, float], token_ids, tops: list[dict[int, float]]) -> None:
        """Ask the request of ``prompts`` again (one request), as it was or re-biased (:meth:`_rebiased`), and
        compare with their answers ``tops``; :class:`InconsistentServerError` when an answer disagrees beyond
        the stated error."""
        s = self.settings
        with self.lock:
            rebias = len(tops[0]) >= 2 and self._draw.random() < 0.5
        change = self._rebiased(tops[0], bias) if rebias else {}
        again = [top for top, _ in self._send(prompts, k, {**bias, **change}, token_ids, counter="spot_checks")]
        tol = 4 * s.logprob_error if change else 2 * s.logprob_error
        gaps = [_moved_gap(a, b, bias, change) if change else _repeat_gap(a, b) for a, b in zip(tops, again)]
        worst = max(range(len(gaps)), key=gaps.__getitem__)
        if gaps[worst] > tol:
            prompt = prompts[worst]
            kind = f"the request re-biased ({len(change)} token moved)" if change else "the request repeated"
            raise InconsistentServerError(
                f"{s.base_url} failed a spot check (one in {1 / s.spot_check_rate:.3g} paid answers is asked again): "
                f"{kind} (prompt {list(prompt)[:8]}{'…' if len(prompt) > 8 else ''}, logprobs={k}) answered "
                f"{gaps[worst]:.3g} away from the first answer, more than {tol:.3g} (from logprob_error = "
                f"{s.logprob_error:g}); the server's answers cannot be trusted for logit recovery")

    # -- vLLM's logprob_token_ids --------------------------------------------------------------------
    def supports_token_ids(self) -> bool:
        """Whether the server answers vLLM's ``logprob_token_ids`` (asked once per client, one uncached request
        counted in ``probe_calls``; :meth:`_probe_token_ids`)."""
        with self._probe_lock:
            if self._token_ids is None:
                self._token_ids = self._probe_token_ids()
            return self._token_ids

    def _probe_token_ids(self) -> bool:
        """One request naming the ids 0 and V − 1 with ``logprobs=1``: a server that refuses the field (4xx) or
        ignores it (not both ids back) does not answer it (``token_ids_note`` says why)."""
        if self.vocab_size < 2:
            self.token_ids_note = "a vocabulary of one token has nothing to read"
            return False
        prompt = (0,) if self.max_prompt is None or self.max_prompt >= 1 else ()
        calls = self.calls
        try:
            self._send([prompt], 1, {}, (0, self.vocab_size - 1))
        except (RequestRefusedError, InconsistentServerError) as err:
            self.token_ids_note = f"logprob_token_ids not answered: {err}"
            return False
        finally:
            with self.lock:
                self.probe_calls += self.calls - calls
        self.token_ids_note = "logprob_token_ids answered"
        return True

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
    """Largest error of lp(z) − lp(r) after re-biasing, against the bias change it must show exactly:
    (Δb_z − Δb_r), r the likeliest token of ``first`` that came back again (tokens missing from either answer
    are skipped; inf when none is common).

    >>> _moved_gap({1: -0.5, 2: -1.5}, {1: -0.7, 2: -0.7}, {}, {2: 1.0})
    0.0
    """
    common = [t for t in first if t in again]
    if not common:
        return math.inf
    r = min(common, key=lambda t: (-first[t], t))

    def shift(t: int) -> float:
        return change.get(t, bias.get(t, 0.0)) - bias.get(t, 0.0)

    gaps = [abs((again[z] - again[r]) - (first[z] - first[r]) - (shift(z) - shift(r))) for z in common if z != r]
    return max(gaps, default=0.0)


def _memo_key(request: dict) -> tuple:
    """The in-memory cache's key of a canonical request."""
    ids = request.get("logprob_token_ids")
    return (tuple(request["prompt"]), request["logprobs"], tuple(map(tuple, request["logit_bias"])),
            None if ids is None else tuple(ids))


def _describe(prompts, k: int, bias: dict[int, float], token_ids) -> str:
    """The request in words, for errors.

    >>> _describe([(1, 2)], 3, {}, None)
    'the completion request (prompt of 2 tokens, logprobs=3, 0 biased tokens)'
    >>> _describe([(1, 2), (3,)], 1, {}, (4, 5))
    'the completion request (2 prompts of up to 2 tokens, logprobs=1, 0 biased tokens, 2 logprob_token_ids)'
    """
    size = (f"prompt of {len(prompts[0])} tokens" if len(prompts) == 1 else
            f"{len(prompts)} prompts of up to {max(map(len, prompts))} tokens")
    ids = "" if token_ids is None else f", {len(token_ids)} logprob_token_ids"
    return f"the completion request ({size}, logprobs={k}, {len(bias)} biased tokens{ids})"


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
