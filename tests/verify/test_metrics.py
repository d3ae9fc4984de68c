import math

import pytest
import torch

from logitrank.verify import kl_divergence, tv_distance


def test_hand_worked_values():
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert tv_distance(p, q) == pytest.approx(0.25, abs=1e-15)
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(2) - 0.25 * math.log(2), abs=1e-15)
    assert tv_distance(p, p) == 0.0 and kl_divergence(p, p) == 0.0
    assert kl_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == math.inf


BAD = [
    (lambda: tv_distance(torch.tensor([0.5, 0.5]), torch.tensor([1.0])), ValueError, r"same shape; got \(2,\) and \(1,\)"),
    (lambda: tv_distance(torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5])), ValueError, r"p must sum to 1 \(a distribution\); got sum 1.1"),
    (lambda: tv_distance(torch.tensor([1.5, -0.5]), torch.tensor([0.5, 0.5])), ValueError, r"p must hold finite non-negative"),
    (lambda: tv_distance([0.5, 0.5], torch.tensor([0.5, 0.5])), TypeError, r"p must be a torch.Tensor of probabilities; got list"),
    (lambda: kl_divergence(torch.tensor([1, 0]), torch.tensor([0.5, 0.5])), TypeError, r"p must be a floating tensor"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD)
def test_bad_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
