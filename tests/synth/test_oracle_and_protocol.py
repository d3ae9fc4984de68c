"""CountingOracle accounting and the LogitModel base class (generic protocol paths)."""

import pytest
import torch
from hypothesis import given

from logitrank.synth import CountingOracle, LanguageModel, LogitModel, random_isan
from logitrank.synth.strategies import isans


class ScoresOnly(LogitModel):
    """A model that only provides _raw_logits (borrowed from an ISAN), to exercise the generic
    sample/log_prob/log_probs of the base class against the ISAN's own O(T) versions."""

    def __init__(self, isan):
        self.isan = isan
        self.vocab_size, self.horizon = isan.vocab_size, isan.horizon
        self.device, self.dtype = isan.device, isan.dtype

    def _raw_logits(self, prefixes):
        return self.isan._raw_logits(prefixes) + 5.0  # a per-row shift must not matter


def test_protocol_is_structural():
    assert isinstance(random_isan(2, 3, 1, generator=0), LanguageModel)
    assert isinstance(CountingOracle(random_isan(2, 3, 1, generator=0)), LanguageModel)
    assert not isinstance(object(), LanguageModel)


@pytest.mark.numerics  # float results of two code paths compared: .ci/run reruns it on other BLAS kernels
@given(isans(max_horizon=4))
def test_generic_paths_agree_with_isan_paths(model):
    generic = ScoresOnly(model)
    seqs = model.sample(7, generator=3)
    torch.testing.assert_close(generic.log_prob(seqs), model.log_prob(seqs), rtol=1e-12, atol=1e-12)
    prefix = seqs[:, : model.horizon - 1]
    torch.testing.assert_close(generic.logits(prefix), model.logits(prefix), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(generic.log_probs(prefix), model.log_probs(prefix), rtol=1e-12, atol=1e-12)
    # Both samplers draw one categorical per position from the same generator stream, so the
    # same seed gives the same sequences. Their probabilities come from different routes (scores + 5
    # re-run per prefix vs the recurrence), equal only to rounding: a token can differ only if two of
    # multinomial's ratios p_i/q_i tie to ~1e-16 (odds ~1e-16 per draw), so integer equality is kept.
    assert torch.equal(generic.sample(7, generator=3), seqs)


def test_counting_oracle_counts_queries_tokens_samples():
    oracle = CountingOracle(random_isan(3, 5, 2, generator=0))
    oracle.logits(torch.zeros(4, 3, dtype=torch.long))
    oracle.log_probs([[0], [1]])
    assert (oracle.queries, oracle.tokens) == (6, 14)
    oracle.sample(10, generator=0)
    oracle.log_prob(torch.zeros(3, 5, dtype=torch.long))
    assert oracle.counts() == {"queries": 6, "tokens": 14, "samples": 10, "scored": 3}
    assert oracle.hidden_dim == 2 and oracle.vocab_size == 3 and oracle.horizon == 5
    oracle.reset()
    assert oracle.counts() == {"queries": 0, "tokens": 0, "samples": 0, "scored": 0}


def test_counting_oracle_does_not_count_rejected_queries():
    oracle = CountingOracle(random_isan(3, 5, 2, generator=0))
    try:
        oracle.logits(torch.full((2, 2), 7))
    except ValueError:
        pass
    assert oracle.queries == 0


def test_counting_oracle_counts_batched_block_queries():
    """A model's own batched path (``logit_block``, used by algorithms.logit_matrix) is counted
    like individual queries, never bypassed through attribute forwarding."""

    class Blocky(ScoresOnly):
        def logit_block(self, histories, futures, columns=None, update=None):
            return torch.zeros(len(histories), len(futures), self.vocab_size)

    oracle = CountingOracle(Blocky(random_isan(3, 6, 2, generator=0)))
    oracle.logit_block([(0,), (1, 2)], [(), (0,), (1, 1)])
    assert (oracle.queries, oracle.tokens) == (6, 3 * 3 + 2 * 3)
    assert not hasattr(CountingOracle(ScoresOnly(random_isan(3, 6, 2, generator=0))), "logit_block")
