"""A memo of logit queries, so learners never pay twice for the same prefix."""

from __future__ import annotations

import torch

from logitrank.synth import LanguageModel

__all__ = ["QueryCache"]


class QueryCache:
    """Wrap a model; answer repeated ``logits`` queries from memory.

    Learners re-read the same prefixes across rounds (Algorithm 3 re-tests every level each
    round). Only prefixes never seen before reach the wrapped model, so a
    :class:`logitrank.synth.CountingOracle` underneath counts *distinct* queries, while ``requests`` here
    counts every lookup.

    Parameters
    ----------
    model : LanguageModel
        Typically a ``CountingOracle``.

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import CountingOracle, random_isan
    >>> oracle = CountingOracle(random_isan(3, 4, 2, generator=0))
    >>> cache = QueryCache(oracle)
    >>> _ = cache.logits(torch.tensor([[0, 1], [0, 1], [2, 2]]))
    >>> _ = cache.logits(torch.tensor([[2, 2]]))
    >>> oracle.queries, cache.requests, cache.hits
    (2, 4, 2)
    """

    def __init__(self, model: LanguageModel):
        self.model = model
        self._memo: dict[tuple[int, ...], torch.Tensor] = {}
        self.requests = 0

    @property
    def hits(self) -> int:
        """Lookups answered from memory."""
        return self.requests - len(self._memo)

    @property
    def uncached(self) -> LanguageModel:
        """The wrapped model, for one-off queries not worth remembering (fresh samples)."""
        return self.model

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def horizon(self) -> int | None:
        return self.model.horizon

    def __len__(self) -> int:
        return len(self._memo)

    def logits(self, prefixes) -> torch.Tensor:
        """(B, t) LongTensor → (B, V) mean-centred logits, from memory where possible."""
        prefixes = torch.as_tensor(prefixes)
        keys = [tuple(row) for row in prefixes.tolist()]
        self.requests += len(keys)
        missing = list(dict.fromkeys(k for k in keys if k not in self._memo))
        if missing:
            width = prefixes.shape[1] if prefixes.ndim == 2 else 0
            fresh = self.model.logits(torch.tensor(missing, dtype=torch.long).reshape(len(missing), width))
            for key, row in zip(missing, fresh):
                self._memo[key] = row
        if not keys:
            return self.model.logits(prefixes)
        return torch.stack([self._memo[k] for k in keys])

    def log_probs(self, prefixes) -> torch.Tensor:
        return torch.log_softmax(self.logits(prefixes), dim=-1)

    def sample(self, n: int, *, generator, **kwargs) -> torch.Tensor:
        return self.model.sample(n, generator=generator, **kwargs)

    def log_prob(self, sequences) -> torch.Tensor:
        return self.model.log_prob(sequences)
