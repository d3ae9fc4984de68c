"""Regression tests for issue 11, defect 4: ``learn_isan`` and ``max_rank``, repeated histories."""

import pytest
import torch

from logitrank.algorithms import RankExceededError, learn_isan
from logitrank.synth import LogitModel, random_isan


class FreshNoise(LogitModel):
    """An oracle whose logits carry new uniform noise in [−ξ, ξ] at every call (not repeatable).

    ``logit_block`` is deliberately absent, so every query goes through ``logits``.
    """

    def __init__(self, model, xi: float, seed: int):
        self.model, self.xi = model, xi
        self.vocab_size, self.horizon = model.vocab_size, model.horizon
        self.device, self.dtype = model.device, model.dtype
        self._gen = torch.Generator().manual_seed(seed)

    def _raw_logits(self, prefixes):
        clean = self.model.logits(prefixes)
        return clean + self.xi * (2 * torch.rand(clean.shape, generator=self._gen, dtype=clean.dtype) - 1)

    def sample(self, n, *, generator, length=None):
        return self.model.sample(n, generator=generator, length=length)


def test_max_rank_bounds_the_learned_dimension():
    """Before the fix: hidden_dim 4 returned silently for max_rank=3 (the test was ``> max_rank + 1``)."""
    with pytest.raises(RankExceededError, match=r"at least 4 spanning histories .* more than max_rank=3") as err:
        learn_isan(random_isan(3, 6, 4, generator=0), epsilon=0.1, max_rank=3, generator=0)
    assert err.value.found == 4 and err.value.max_rank == 3


def test_max_rank_equal_to_the_dimension_is_accepted():
    learned, report = learn_isan(random_isan(3, 6, 4, generator=0), epsilon=0.1, max_rank=4, generator=0)
    assert report.hidden_dim == learned.hidden_dim == 4


def test_non_repeatable_noise_never_repeats_a_history():
    """Before the fix, sampled prefixes already in H_t were re-added (a level ended with 66 histories,
    9 distinct). Every level now holds distinct words, at most |Σ^t| of them."""
    V, T = 3, 5
    noisy = FreshNoise(random_isan(V, T, 3, generator=0), 1e-3, seed=0)
    _, report = learn_isan(noisy, epsilon=0.3, rank_tol=1e-9, max_rank=V**T, generator=0)
    for t, H in enumerate(report.histories):
        assert len(set(H)) == len(H) <= V**t
    assert report.hidden_dim <= V ** (T - 1)
