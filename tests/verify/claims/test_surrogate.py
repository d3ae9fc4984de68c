"""X4's pieces: the restricted model (Σ', T) and the rank-r truncation comparator."""

import pytest
import torch

from logitrank.algorithms import level_ranks
from logitrank.synth import all_sequences, random_isan
from logitrank.verify import tv_distance
from logitrank.verify.claims.checks._surrogate_claims import RestrictedLM, truncated_distribution


@pytest.fixture(scope="module")
def restricted():
    return RestrictedLM(random_isan(6, 4, 3, generator=0), [5, 1, 3], 3)


def test_restricted_model_renormalises_over_the_kept_tokens(restricted):
    base = random_isan(6, 4, 3, generator=0)
    seqs = all_sequences(3, 3)
    p = restricted.distribution()
    assert torch.allclose(p, restricted.log_prob(seqs).exp(), atol=1e-12) and abs(float(p.sum()) - 1) < 1e-12
    by_hand = base.log_probs(torch.tensor([[1, 3]]))[0, [5, 1, 3]].softmax(0)  # tokens 1, 2 of Σ' = base 1, 3
    assert torch.allclose(restricted.log_probs(torch.tensor([[1, 2]]))[0].exp(), by_hand, atol=1e-12)


def test_truncation_is_exact_at_full_rank_and_worse_below(restricted):
    p = restricted.distribution()
    full = max(level_ranks(restricted))
    assert tv_distance(p, truncated_distribution(restricted, full)) < 1e-10
    assert tv_distance(p, truncated_distribution(restricted, 1)) > 1e-3


@pytest.mark.parametrize("tokens, horizon, match", [
    ([0, 0], 3, "distinct"), ([0, 9], 3, r"\[0, 6\)"), ([], 3, "distinct"), ([0, 1], 0, "horizon"),
])
def test_bad_arguments(tokens, horizon, match):
    with pytest.raises(ValueError, match=match):
        RestrictedLM(random_isan(6, 4, 3, generator=0), tokens, horizon)
