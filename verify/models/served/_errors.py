"""What can go wrong between a logit query and an OpenAI-compatible server, one class per cause.

Every refusal of the client is one of these (or a ValueError/TypeError for a bad argument), and its
message names the server, the request and the fix when one is known.
"""

from __future__ import annotations

__all__ = [
    "APICacheError",
    "APICacheWarning",
    "APIModelError",
    "InconsistentServerError",
    "RecoveryError",
    "RequestRefusedError",
    "ServerUnreachableError",
    "TokenMapError",
]


class APIModelError(RuntimeError):
    """Base class of every failure of :class:`logitrank.verify.models.served.APIModel` talking to its server."""


class ServerUnreachableError(APIModelError):
    """The server did not answer (connection refused, timeouts, rate limits or 5xx after every retry)."""


class RequestRefusedError(APIModelError):
    """The server answered a request with a 4xx error (its message is quoted)."""


class InconsistentServerError(APIModelError):
    """The server's answers cannot be trusted for logit recovery: a repeated request gave other numbers,
    ``logit_bias`` does not move the returned log-probabilities, or fewer tokens came back than asked."""


class TokenMapError(APIModelError):
    """A token name returned by the server does not map to exactly one token id."""


class RecoveryError(APIModelError):
    """A logit cannot be recovered within the server's limits (e.g. it lies more than the bias limit
    below the largest logit, so no allowed bias brings it into the returned top-k)."""


class APICacheError(APIModelError):
    """The on-disk answer cache belongs to another served model: the answers to the fixed fingerprint
    prompts differ from those stored with it (or its fingerprint file is damaged), so none of its
    answers may be used. The message names the cache folder and the way out."""


class APICacheWarning(UserWarning):
    """A stored answer did not verify (named in the message); it was deleted and asked again."""
