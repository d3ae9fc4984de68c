"""Query accounting for learners (paper A, §4.2 "logit queries"; paper B's query bounds)."""

from __future__ import annotations

import torch

from ._protocol import LanguageModel

__all__ = ["CountingOracle"]


class CountingOracle:
    """Wrap a model and count what a learner asks of it.

    Every learner in ``logitrank.algorithms`` talks to its model through one of these and reports the
    counters. One *logit query* is one prefix whose next-token logits were requested (a (B, t)
    batch counts B queries); *tokens* adds up the lengths of those prefixes, a proxy for compute.
    Samples drawn and sequences scored are counted separately.

    Parameters
    ----------
    model : LanguageModel
        Any object following the protocol.

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import CountingOracle, random_isan
    >>> oracle = CountingOracle(random_isan(3, 4, 2, generator=0))
    >>> _ = oracle.logits(torch.zeros(5, 2, dtype=torch.long))
    >>> oracle.queries, oracle.tokens
    (5, 10)
    """

    def __init__(self, model: LanguageModel):
        if not isinstance(model, LanguageModel):
            raise TypeError(
                f"model must follow the synth.LanguageModel protocol (vocab_size, horizon, logits, "
                f"log_probs, sample, log_prob); got {type(model).__name__}"
            )
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Set every counter to zero."""
        self.queries = 0
        self.tokens = 0
        self.samples = 0
        self.scored = 0

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def horizon(self) -> int | None:
        return self.model.horizon

    def __getattr__(self, name):  # device, dtype, hidden_dim … of the wrapped model
        if name == "model":
            raise AttributeError(name)
        attr = getattr(self.model, name)
        if name == "logit_block":  # a batched query path (see logitrank.algorithms.logit_matrix): count it too
            return self._counted_block(attr)
        return attr

    def _counted_block(self, block):
        def logit_block(histories, futures, *args, **kwargs):
            out = block(histories, futures, *args, **kwargs)
            n = len(histories)
            history_tokens = (histories.numel() if isinstance(histories, torch.Tensor)
                              else sum(len(h) for h in histories))
            self.queries += n * len(futures)
            self.tokens += history_tokens * len(futures) + n * sum(len(f) for f in futures)
            return out

        return logit_block

    def _count(self, prefixes) -> None:
        rows, length = torch.as_tensor(prefixes).shape  # validated as (B, t) by the model
        self.queries += int(rows)
        self.tokens += int(rows) * int(length)

    def logits(self, prefixes) -> torch.Tensor:
        """As ``model.logits``; counts B queries and B·t tokens."""
        out = self.model.logits(prefixes)
        self._count(prefixes)
        return out

    def log_probs(self, prefixes) -> torch.Tensor:
        """As ``model.log_probs``; counted like :meth:`logits`."""
        out = self.model.log_probs(prefixes)
        self._count(prefixes)
        return out

    def sample(self, n: int, *, generator, **kwargs) -> torch.Tensor:
        """As ``model.sample``; counts n samples."""
        out = self.model.sample(n, generator=generator, **kwargs)
        self.samples += int(out.shape[0])
        return out

    def log_prob(self, sequences) -> torch.Tensor:
        """As ``model.log_prob``; counts the sequences scored."""
        out = self.model.log_prob(sequences)
        self.scored += int(out.shape[0])
        return out

    def counts(self) -> dict[str, int]:
        """The counters as a dict (for reports)."""
        return {"queries": self.queries, "tokens": self.tokens, "samples": self.samples, "scored": self.scored}

    def __repr__(self) -> str:
        return f"CountingOracle({self.model!r}, {self.counts()})"
