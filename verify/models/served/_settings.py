"""The settings of an API model: one frozen dataclass, validated when built."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields
from pathlib import Path

from logitrank._validation import check_int, check_real

__all__ = ["METHODS", "APISettings", "settings_from"]

#: Recovery methods (module :mod:`logitrank.verify.models.served._recover`); "auto" picks "token_ids" or "exact".
METHODS = ("auto", "token_ids", "exact", "bisection")
#: vLLM's largest ``logprob_token_ids`` list (``vllm.sampling_params.MAX_LOGPROB_TOKEN_IDS``)
MAX_LOGPROB_TOKEN_IDS = 128


@dataclass(frozen=True)
class APISettings:
    """How :class:`~logitrank.verify.models.served.APIModel` talks to an OpenAI-compatible completions endpoint.

    Attributes
    ----------
    base_url : str
        The API root, e.g. ``"http://127.0.0.1:8000/v1"``.
    model : str
        The served model's name (``GET /v1/models`` lists them).
    api_key_env : str
        Environment variable holding the API key (read when the client is built, never stored).
        A local server without keys accepts any value, e.g. ``EMPTY``.
    k : int >= 2
        Top log-probabilities asked per call (``logprobs=k``); at most what the server allows
        (20 on OpenAI-style servers). The exact method reads k − 1 tokens per call.
    bias_limit : float > 0
        Largest |logit_bias| the server accepts (100 on OpenAI-style servers).
    method : {"auto", "token_ids", "exact", "bisection"}
        How logits are recovered (:mod:`logitrank.verify.models.served._recover`). "token_ids" asks
        vLLM's ``logprob_token_ids`` (the log-probabilities of up to ``token_ids_limit`` chosen ids per
        call, no bias: ⌈m/token_ids_limit⌉ calls for m columns, error ≤ 2·logprob_error, no bias
        limit on how far below the top a logit may lie); "exact" puts k − 1 target tokens and a
        reference token at +bias_limit per call (⌈(m − 1)/(k − 1)⌉ calls, error ≤ 4·logprob_error);
        "bisection" moves one token at a time until it becomes the argmax (1 + (m − 1)·⌈log₂(
        bias_limit/bisection_tol)⌉ calls, error ≤ bisection_tol + 4·logprob_error; needs only the
        top-1 token; fractional biases, which vLLM accepts and OpenAI's own API does not). "auto"
        (default) asks the server once, when the first logits are needed (one call, counted in
        ``probe_calls``), whether it answers ``logprob_token_ids``, and reads by "token_ids" if it
        does, else by "exact" (:attr:`APIModel.method` says which).
    token_ids_limit : int >= 1
        Token ids per ``logprob_token_ids`` call (vLLM's limit and the default: 128); lowered to the
        server's ``logprob_token_ids_limit`` when its model card has one.
    batch_prompts : int >= 1
        Prompts sent in one completions request (a list of token-id prompts, answered in
        ``choices[i].index`` order, as vLLM and logitrank's server do): the requests of the exact
        and token-id methods that differ only in their prompt share a call. Lowered to the server's
        ``max_prompts`` when its model card has one; 1 sends one prompt per request. A server that
        refuses a batch but answers its first prompt alone is then asked one prompt at a time.
    bisection_tol : float > 0
        Width of the final bisection interval of each logit difference.
    logprob_error : float >= 0
        Absolute error assumed for one returned log-probability (the server's rounding). The
        default 1e-5 covers a float32 server: adding a bias of 100 rounds each shifted logit by up
        to ulp(100)/2 ≈ 3.8e-6 in float32. The local server of :func:`serve_app` computes in float64
        (≈ 1e-13); a bfloat16 server needs ≈ 0.5. Enters every stated error bound and the
        tolerance of the consistency checks.
    vocab_size : int, optional
        V; read from the server's model card (``vocab_size``) when None.
    horizon : int, optional
        T; read from the server's model card (``horizon``) when None; None there means unbounded.
    max_workers : int >= 1
        Requests in flight at once (a thread pool).
    max_retries : int >= 0
        Further tries of a request after a rate limit, a connection failure, a timeout or a 5xx.
    backoff : float > 0
        Seconds before the first retry; doubled every retry up to ``backoff_max`` (a server's
        ``Retry-After`` header, when longer, is obeyed up to ``backoff_max``).
    backoff_max : float > 0
    timeout : float > 0
        Seconds one request may take.
    cache_dir : path, True, False or None
        Folder of the verified on-disk answer cache (:mod:`logitrank.verify.models.served._cache`), so a
        killed run resumes without paying twice. True (default): ``$LOGITRANK_API_CACHE`` when set
        (empty or ``off``: no disk cache), else ``results/api-cache`` under the working directory,
        in a sub-folder per served model (``served-<fingerprint digest>``: another model served
        under the same URL and name gets another folder, never an error). A path: that folder,
        shared by every served model, whose fingerprint file refuses another model
        (:class:`APICacheError`). None or False: answers are kept in memory only.
    cache_scope : str, optional
        What the stored answers belong to; default ``"<base_url>|<model>"``. Give two servers of the
        same model the same scope to share answers. Whatever the scope, every new client compares
        the server's answers to a few fixed prompts with those stored beside the cache (its
        *fingerprint*) and refuses a cache of another served model (:class:`APICacheError`).
    check_server : bool
        Probe the server once when the client is built (:meth:`APIModel.check_server`): a repeated
        request must give the same numbers, logit_bias must move the returned log-probabilities,
        and k tokens must come back.
    spot_check_rate : float in [0, 1]
        Fraction of the paid requests checked while the client runs (default 0.01: one in a
        hundred, drawn at random): the request is asked again, either as it was (the answer must
        repeat to 2·logprob_error) or with the bias of one returned token moved by up to 1 (the
        differences must move by exactly that, to 4·logprob_error). A failure raises
        :class:`~logitrank.verify.models.served.InconsistentServerError` before the answer is used
        or stored; it catches a server that is exact only on the probe's prompt. The checks are
        paid requests, counted in ``spot_checks`` (not in ``calls``). 0 turns them off.
    spot_check_seed : int >= 0
        Seed of the draw of the requests checked.
    bos : "server", int >= 0 or None
        The start-token (BOS) convention. ``"server"`` (default) trusts a model card that says
        ``adds_bos: true`` (logitrank's server prepends the model's start token) and refuses, at
        construction, a card that says nothing about it (vLLM adds no start token to token-id
        prompts). An int: the client prepends that id to every prompt it sends (it may lie outside
        [0, V), as a start token; refused against a server that adds one itself). None: prompts are
        sent as they are.

    Examples
    --------
    >>> s = APISettings(base_url="http://127.0.0.1:8000/v1", model="isan", k=5)
    >>> s.k, s.method, s.scope, s.batch_prompts, s.cache_dir
    (5, 'auto', 'http://127.0.0.1:8000/v1|isan', 16, True)
    >>> APISettings(base_url="http://x/v1", model="m", k=1)
    Traceback (most recent call last):
    ...
    ValueError: k must be >= 2; got 1
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    k: int = 20
    bias_limit: float = 100.0
    method: str = "auto"
    token_ids_limit: int = MAX_LOGPROB_TOKEN_IDS
    batch_prompts: int = 16
    bisection_tol: float = 1e-4
    logprob_error: float = 1e-5
    vocab_size: int | None = None
    horizon: int | None = None
    max_workers: int = 8
    max_retries: int = 5
    backoff: float = 0.5
    backoff_max: float = 20.0
    timeout: float = 60.0
    cache_dir: str | Path | bool | None = True
    cache_scope: str | None = None
    check_server: bool = True
    spot_check_rate: float = 0.01
    spot_check_seed: int = 0
    bos: int | str | None = "server"

    def __post_init__(self):
        for name in ("base_url", "model", "api_key_env"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a non-empty string; got {value!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://; got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "k", check_int("k", self.k, minimum=2))
        object.__setattr__(self, "bias_limit", check_real("bias_limit", self.bias_limit, low=0.0, low_open=True))
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")
        for name in ("token_ids_limit", "batch_prompts"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        tol = check_real("bisection_tol", self.bisection_tol, low=0.0, low_open=True)
        object.__setattr__(self, "bisection_tol", tol)
        object.__setattr__(self, "logprob_error", check_real("logprob_error", self.logprob_error, low=0.0))
        for name in ("vocab_size", "horizon"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        object.__setattr__(self, "max_workers", check_int("max_workers", self.max_workers, minimum=1))
        object.__setattr__(self, "max_retries", check_int("max_retries", self.max_retries, minimum=0))
        for name in ("backoff", "backoff_max", "timeout"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), low=0.0, low_open=True))
        self._check_cache_dir()
        if self.cache_scope is not None and (not isinstance(self.cache_scope, str) or not self.cache_scope):
            raise TypeError(f"cache_scope must be a non-empty string or None; got {self.cache_scope!r}")
        if not isinstance(self.check_server, bool):
            raise TypeError(f"check_server must be a bool; got {self.check_server!r}")
        rate = check_real("spot_check_rate", self.spot_check_rate, low=0.0, high=1.0)
        object.__setattr__(self, "spot_check_rate", rate)
        object.__setattr__(self, "spot_check_seed", check_int("spot_check_seed", self.spot_check_seed, minimum=0))
        self._check_bos()

    def _check_cache_dir(self) -> None:
        folder = self.cache_dir
        if folder is None or isinstance(folder, bool):
            return
        if not isinstance(folder, (str, Path)):
            raise TypeError(f"cache_dir must be a path, True (the default folder: $LOGITRANK_API_CACHE or "
                            f"results/api-cache), or None/False (no disk cache); got {type(folder).__name__}")
        if not str(folder).strip():
            raise ValueError(f"cache_dir must name a folder; got {folder!r} (None or False: no disk cache)")

    def _check_bos(self) -> None:
        bos = self.bos
        if bos is None or (isinstance(bos, str) and bos == "server"):
            return
        ok = not isinstance(bos, (bool, str, float)) and hasattr(bos, "__index__") and operator.index(bos) >= 0
        if ok:
            object.__setattr__(self, "bos", operator.index(bos))
        else:
            raise ValueError(f"bos must be 'server' (trust the server's model card), a start-token id (an int >= 0, "
                             f"prepended by the client; SmolLM2: 0) or None (prompts sent as they are); got {bos!r}")

    @property
    def scope(self) -> str:
        """What cached answers belong to (``cache_scope`` or ``"<base_url>|<model>"``)."""
        return self.cache_scope or f"{self.base_url}|{self.model}"

    @property
    def bisection_steps(self) -> int:
        """Calls per logit difference of the bisection: ⌈log₂(bias_limit / bisection_tol)⌉ (at least 1)."""
        return max(1, math.ceil(math.log2(self.bias_limit / self.bisection_tol)))

    def error_bound(self, method: str | None = None) -> float:
        """Bound on |recovered − true| of every returned (mean-centred) logit under ``method`` (default: the
        setting; "auto" gives the larger of the two it may pick, the exact method's).

        >>> s = APISettings(base_url="http://x/v1", model="m", logprob_error=1e-5)
        >>> s.error_bound("token_ids"), s.error_bound("exact"), s.error_bound()
        (2e-05, 4e-05, 4e-05)
        """
        method = self.method if method is None else method
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}")
        if method == "token_ids":
            return 2.0 * self.logprob_error
        if method in ("exact", "auto"):
            return 4.0 * self.logprob_error
        return self.bisection_tol + 4.0 * self.logprob_error


def settings_from(settings: APISettings | None, options: dict) -> APISettings:
    """``settings`` with ``options`` (field names) overriding its fields, validated."""
    names = {f.name for f in fields(APISettings)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"unknown API setting(s) {unknown}; the settings are {sorted(names)}")
    if settings is None:
        return APISettings(**options)
    if not isinstance(settings, APISettings):
        raise TypeError(f"settings must be an APISettings; got {type(settings).__name__}")
    if not options:
        return settings
    base = {f.name: getattr(settings, f.name) for f in fields(APISettings)}
    base.update(options)
    return APISettings(**base)
