"""Token names returned by a server, mapped back to token ids — exactly one id per name, or a refusal.

A completions endpoint keys its ``top_logprobs`` by token *text*. Two ids that decode to the same
text (common with byte-level BPE: partial UTF-8 sequences all decode to "\\ufffd") would collapse
into one entry, and the logit read for "that text" would belong to an unknown one of them. vLLM's
``--return-tokens-as-token-ids`` names every token ``token_id:N`` instead, which is unambiguous;
the server of :func:`logitrank.verify.models.served.serve_app` always does. Any other naming needs the
server's vocabulary (``vocab[i]`` = the text of id i) in which no text may occur twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._errors import TokenMapError

__all__ = ["TokenMap", "token_name"]

_TOKEN_ID = re.compile(r"token_id:(\d+)")


def token_name(token_id: int) -> str:
    """The unambiguous name of a token id (vLLM's ``return_tokens_as_token_ids`` convention).

    >>> token_name(17)
    'token_id:17'
    """
    return f"token_id:{int(token_id)}"


class TokenMap:
    """Map server token names to ids in [0, V): ``token_id:N`` always, vocabulary texts when given.

    Parameters
    ----------
    vocab_size : int
        V; every mapped id must lie in [0, V).
    vocab : sequence of str, optional
        The text of each id. Refused when two ids share a text (the map would be ambiguous).

    Examples
    --------
    >>> m = TokenMap(3)
    >>> m.to_id("token_id:2")
    2
    >>> TokenMap(3, vocab=["a", "b", "c"]).to_id("b")
    1
    >>> TokenMap(3, vocab=["a", "b", "a"])
    Traceback (most recent call last):
    ...
    logitrank.verify.models.served._errors.TokenMapError: vocab gives one text to several ids (1 such texts, e.g. 'a' for ids [0, 2]), so a server answer keyed by text is ambiguous; start the server with token ids as names (vLLM: --return-tokens-as-token-ids)
    """

    def __init__(self, vocab_size: int, *, vocab: Sequence[str] | None = None):
        self.vocab_size = int(vocab_size)
        self._by_text: dict[str, int] | None = None
        if vocab is None:
            return
        if isinstance(vocab, str) or not isinstance(vocab, Sequence):
            raise TypeError(f"vocab must be a sequence of token texts (vocab[i] = text of id i); got {type(vocab).__name__}")
        if len(vocab) != self.vocab_size:
            raise ValueError(f"vocab must name every token id: {self.vocab_size} texts; got {len(vocab)}")
        ids_by_text: dict[str, list[int]] = {}
        for i, text in enumerate(vocab):
            if not isinstance(text, str):
                raise TypeError(f"vocab[{i}] must be a str; got {type(text).__name__}")
            ids_by_text.setdefault(text, []).append(i)
        shared = {t: ids for t, ids in ids_by_text.items() if len(ids) > 1}
        if shared:
            text, ids = next(iter(shared.items()))
            raise TokenMapError(
                f"vocab gives one text to several ids ({len(shared)} such texts, e.g. {text!r} for ids {ids[:5]}), so a server "
                "answer keyed by text is ambiguous; start the server with token ids as names "
                "(vLLM: --return-tokens-as-token-ids)"
            )
        clash = [t for t in ids_by_text if _TOKEN_ID.fullmatch(t) and int(t[9:]) != ids_by_text[t][0]]
        if clash:
            raise TokenMapError(f"vocab text {clash[0]!r} (id {ids_by_text[clash[0]][0]}) looks like another id's "
                                "token_id:N name, so the map would be ambiguous")
        self._by_text = {t: ids[0] for t, ids in ids_by_text.items()}

    def to_id(self, name: str) -> int:
        """The id of the token the server called ``name``; raises :class:`TokenMapError` when there is none."""
        match = _TOKEN_ID.fullmatch(name) if isinstance(name, str) else None
        if match:
            token = int(match.group(1))
        elif self._by_text is not None and name in self._by_text:
            token = self._by_text[name]
        else:
            hint = ("it is not in the vocab given" if self._by_text is not None else
                    "pass vocab= (the server's token texts) or start the server with token ids as names "
                    "(vLLM: --return-tokens-as-token-ids)")
            raise TokenMapError(f"the server named a token {name!r}, which is not of the form token_id:N; {hint}")
        if not 0 <= token < self.vocab_size:
            raise TokenMapError(f"the server named token {name!r}, outside the vocabulary [0, {self.vocab_size})")
        return token

    def to_ids(self, top: dict[str, float]) -> dict[int, float]:
        """A ``top_logprobs`` entry keyed by name → keyed by id; two names of one id are refused."""
        out: dict[int, float] = {}
        for name, logprob in top.items():
            token = self.to_id(name)
            if token in out:
                raise TokenMapError(f"the server returned two entries for token id {token} (one named {name!r}); "
                                    "the map from names to ids is ambiguous")
            out[token] = float(logprob)
        return out
