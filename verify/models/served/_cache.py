"""Server answers stored on disk, one verified JSON file per request, so a killed run never pays twice.

Each answered request is written atomically (a uniquely named temporary file, then ``os.replace``:
:func:`logitrank._io.atomic_write_bytes`) the moment it arrives, under

    <cache_dir>/<key[:2]>/<key>.json,   key = sha256(scope | canonical request)

A run killed at any point (``kill -9`` included) leaves only whole answers behind; the same run
started again reads them and asks the server only for the rest.

File format (version 1), plain JSON (data, never code)::

    {"format": 1, "scope": "<base_url>|<model>", "request": {"prompt": [...], "logprobs": k,
     "logit_bias": [[id, bias], ...]}, "answer": [[id, logprob], ...], "sha256": "<hex>"}

(a request of vLLM's ``logprob_token_ids`` also holds ``"logprob_token_ids": [id, ...]``; a request
without it has no such key, so the files of earlier runs keep their keys).

where ``sha256`` hashes the canonical JSON of the other four fields. On every read the file must
parse, carry this format, this scope and exactly the request asked (a key collision or a file
copied from elsewhere fails here), hold ids in [0, V) with finite-or-−inf log-probabilities, and
match its checksum. A file that fails is named in an :class:`APICacheWarning`, deleted and asked
again: an unverified answer is never used.

**What is served.** Beside the answers, one *fingerprint* file per scope,

    <cache_dir>/served-model-<sha256(scope)[:16]>.fingerprint   (JSON, checksummed like an answer)

holds the server's answers to a few fixed prompts, taken when the cache was first used. Every new
client asks those prompts again and compares (:meth:`AnswerCache.fingerprint`): a server that now
serves another model under the same URL and name is refused with
:class:`~logitrank.verify.models.served.APICacheError` naming the cache, never answered from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path

from logitrank._io import atomic_write_bytes

from ._errors import APICacheWarning

__all__ = ["CACHE_ENV", "DEFAULT_CACHE", "AnswerCache", "canonical_request", "default_cache_root"]

_FORMAT = 1
#: the environment variable naming the default answer-cache folder (empty or "off": none)
CACHE_ENV = "LOGITRANK_API_CACHE"
#: the default answer-cache folder, under the working directory's results folder
DEFAULT_CACHE = Path("results") / "api-cache"


def default_cache_root() -> Path | None:
    """Where ``cache_dir=True`` keeps answers: ``$LOGITRANK_API_CACHE`` when set (None when it is empty or
    ``off``), else ``results/api-cache``; made absolute against the working directory now.

    >>> saved = os.environ.pop(CACHE_ENV, None)
    >>> default_cache_root() == Path.cwd() / "results" / "api-cache"
    True
    >>> os.environ[CACHE_ENV] = "off"; default_cache_root() is None
    True
    >>> os.environ[CACHE_ENV] = "/tmp/answers"; str(default_cache_root())
    '/tmp/answers'
    >>> _ = os.environ.pop(CACHE_ENV) if saved is None else os.environ.update({CACHE_ENV: saved})
    """
    value = os.environ.get(CACHE_ENV)
    if value is None:
        return Path.cwd() / DEFAULT_CACHE
    if value.strip().lower() in ("", "off"):
        return None
    return Path(value).expanduser().absolute()


def canonical_request(prompt, logprobs: int, logit_bias: dict[int, float], token_ids=None) -> dict:
    """The request as stored and hashed: prompt ids, k, the bias sorted by token id and, when given, the
    ``logprob_token_ids`` in the order asked.

    >>> canonical_request((3, 1), 2, {4: 100.0, 0: 100.0})
    {'prompt': [3, 1], 'logprobs': 2, 'logit_bias': [[0, 100.0], [4, 100.0]]}
    >>> canonical_request((3,), 1, {}, (5, 2))
    {'prompt': [3], 'logprobs': 1, 'logit_bias': [], 'logprob_token_ids': [5, 2]}
    """
    request = {"prompt": [int(t) for t in prompt], "logprobs": int(logprobs),
               "logit_bias": [[int(t), float(b)] for t, b in sorted(logit_bias.items())]}
    if token_ids is not None:
        request["logprob_token_ids"] = [int(t) for t in token_ids]
    return request


def _dumps(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _checksum(record: dict) -> str:
    body = {name: record.get(name) for name in ("format", "scope", "request", "answer")}
    return hashlib.sha256(_dumps(body)).hexdigest()


class AnswerCache:
    """The verified on-disk store of one scope's answers (module docstring).

    Parameters
    ----------
    folder : path
        Where the answer files live (created on first write).
    scope : str
        What the answers belong to (server and model); part of every key and checked on read.
    vocab_size : int
        V; a stored id outside [0, V) fails verification.

    Examples
    --------
    >>> import tempfile
    >>> cache = AnswerCache(tempfile.mkdtemp(), "http://127.0.0.1:1/v1|isan", vocab_size=5)
    >>> req = canonical_request((0,), 2, {})
    >>> cache.get(req) is None
    True
    >>> cache.put(req, {3: -0.5, 1: -1.25})
    >>> cache.get(req)
    {3: -0.5, 1: -1.25}
    """

    def __init__(self, folder, scope: str, *, vocab_size: int):
        self.folder = Path(folder)
        self.scope = scope
        self.vocab_size = int(vocab_size)

    def key(self, request: dict) -> str:
        """sha256 of (scope, request), hex."""
        return hashlib.sha256(self.scope.encode() + b"|" + _dumps(request)).hexdigest()

    def path(self, request: dict) -> Path:
        key = self.key(request)
        return self.folder / key[:2] / f"{key}.json"

    def get(self, request: dict) -> dict[int, float] | None:
        """The stored answer to ``request`` if one exists and verifies; None otherwise (a bad file is
        reported with an :class:`APICacheWarning` and deleted)."""
        path = self.path(request)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            return self._reject(path, f"unreadable ({err.strerror})")
        try:
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            return self._reject(path, f"not JSON ({type(err).__name__})")
        problem = self._verify(record, request)
        if problem is not None:
            return self._reject(path, problem)
        return {int(t): float(lp) for t, lp in record["answer"]}

    def put(self, request: dict, answer: dict[int, float]) -> None:
        """Store ``answer`` atomically; a full or read-only disk costs the cache, never the run."""
        record = {"format": _FORMAT, "scope": self.scope, "request": request,
                  "answer": [[int(t), float(lp)] for t, lp in answer.items()]}
        record["sha256"] = _checksum(record)
        path = self.path(request)
        try:
            atomic_write_bytes(path, _dumps(record))
        except OSError as err:
            warnings.warn(f"answer cache file {path} could not be written ({err}); continuing without it",
                          APICacheWarning, stacklevel=3)

    def _verify(self, record, request: dict) -> str | None:
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            got = record.get("format") if isinstance(record, dict) else type(record).__name__
            return f"not a format-{_FORMAT} answer (got {got!r})"
        if record.get("scope") != self.scope:
            return f"belongs to {record.get('scope')!r}, not {self.scope!r}"
        if record.get("request") != request:
            return "answers another request"
        answer = record.get("answer")
        if not isinstance(answer, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and not isinstance(p[0], bool)
            and isinstance(p[1], (int, float)) and not isinstance(p[1], bool) for p in answer
        ):
            return "answer is not a list of [token id, log-probability] pairs"
        if any(not 0 <= t < self.vocab_size or math.isnan(lp) or lp == math.inf for t, lp in answer):
            return f"answer holds an id outside [0, {self.vocab_size}) or a log-probability that is nan or +inf"
        if len({t for t, _ in answer}) != len(answer):
            return "answer repeats a token id"
        if record.get("sha256") != _checksum(record):
            return "checksum mismatch (payload altered)"
        return None

    # -- the fingerprint of what is served --------------------------------------------------------
    @property
    def fingerprint_path(self) -> Path:
        """The file holding this scope's fingerprint (module docstring)."""
        return self.folder / f"served-model-{hashlib.sha256(self.scope.encode()).hexdigest()[:16]}.fingerprint"

    def fingerprint(self) -> tuple[list | None, str | None]:
        """(stored fingerprint as [[prompt, [[id, logprob], ...]], ...] or None when there is none, problem
        or None): a file that exists but does not verify gives (None, why)."""
        path = self.fingerprint_path
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, UnicodeDecodeError) as err:
            return None, f"unreadable ({type(err).__name__})"
        body = {name: record.get(name) for name in ("format", "scope", "answers")} if isinstance(record, dict) else {}
        if body.get("format") != _FORMAT or body.get("scope") != self.scope or not isinstance(body.get("answers"), list):
            return None, "not a fingerprint of this scope"
        if record.get("sha256") != hashlib.sha256(_dumps(body)).hexdigest():
            return None, "checksum mismatch (altered)"
        return body["answers"], None

    def put_fingerprint(self, answers: list) -> None:
        """Store this scope's fingerprint (atomically); a full or read-only disk costs it, with a warning."""
        body = {"format": _FORMAT, "scope": self.scope, "answers": answers}
        record = {**body, "sha256": hashlib.sha256(_dumps(body)).hexdigest()}
        try:
            atomic_write_bytes(self.fingerprint_path, _dumps(record))
        except OSError as err:
            warnings.warn(f"answer cache fingerprint {self.fingerprint_path} could not be written ({err}); the next "
                          "client cannot tell whether the served model changed", APICacheWarning, stacklevel=3)

    @staticmethod
    def _reject(path: Path, problem: str) -> None:
        try:
            path.unlink(missing_ok=True)
            done = "deleted"
        except OSError as err:
            done = f"could not delete it ({err.strerror})"
        warnings.warn(f"answer cache file {path} is bad: {problem}; {done}, asking the server again",
                      APICacheWarning, stacklevel=4)
