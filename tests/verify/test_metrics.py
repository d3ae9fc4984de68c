import math

import pytest
import torch

from logitrank.synth import all_sequences, perturbed, random_isan
from logitrank.verify import TVEstimate, kl_divergence, tv_distance, tv_estimate, tv_monte_carlo
from logitrank.verify._metrics import TVPrecisionWarning, _last_token_values


def test_hand_worked_values():
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert tv_distance(p, q) == pytest.approx(0.25, abs=1e-15)
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(2) - 0.25 * math.log(2), abs=1e-15)
    assert tv_distance(p, p) == 0.0 and kl_divergence(p, p) == 0.0  # exact: p − p = 0 and log p − log p = 0 entrywise
    assert kl_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == math.inf


BAD = [
    (lambda: tv_distance(torch.tensor([0.5, 0.5]), torch.tensor([1.0])), ValueError, r"same shape; got \(2,\) and \(1,\)"),
    (lambda: tv_distance(torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5])), ValueError, r"p must sum to 1 \(a distribution\); got sum 1.1"),
    (lambda: tv_distance(torch.tensor([1.5, -0.5]), torch.tensor([0.5, 0.5])), ValueError, r"p must hold finite non-negative"),
    (lambda: tv_distance([0.5, 0.5], torch.tensor([0.5, 0.5])), TypeError, r"p must be a torch.Tensor of probabilities; got list"),
    (lambda: kl_divergence(torch.tensor([1, 0]), torch.tensor([0.5, 0.5])), TypeError, r"p must be a floating tensor"),
    # issue 12: atol=nan used to turn validation off, atol=-1 used to blame p
    (lambda: tv_distance(torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5]), atol=float("nan")), ValueError,
     r"atol must be a finite float >= 0 .*got nan"),
    (lambda: tv_distance(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), atol=-1), ValueError,
     r"atol must be a finite float >= 0 .*got -1"),
    (lambda: kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), atol=float("inf")), ValueError,
     r"atol must be a finite float >= 0 .*got inf"),
    (lambda: tv_estimate(random_isan(2, 3, 1, generator=0), random_isan(3, 3, 1, generator=0), generator=0),
     ValueError, r"share vocabulary and horizon"),
    (lambda: tv_estimate(random_isan(2, 3, 1, generator=0), random_isan(2, 3, 1, generator=0), half_width=0,
                         generator=0), ValueError, r"half_width must be a float > 0; got 0"),
    (lambda: tv_estimate(random_isan(2, 3, 1, generator=0), random_isan(2, 3, 1, generator=0), bound="hoeffding",
                         generator=0), ValueError, r"bound must be one of \('bernstein', 'normal'\); got 'hoeffding'"),
    (lambda: tv_estimate(random_isan(2, 3, 1, generator=0), random_isan(2, 3, 1, generator=0), confidence=1.0,
                         generator=0), ValueError, r"confidence must be a float in \(0, 1\); got 1.0"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD)
def test_bad_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def _pair(eps=0.3):
    """A random ISAN and a perturbed copy; V**T = 4096, so the exact TV is known."""
    m = random_isan(4, 6, 3, generator=0)
    q = perturbed(m, eps, generator=1)
    exact = tv_distance(m.distribution(), q.log_prob(all_sequences(4, 6)).exp().double())
    return m, q, exact


@pytest.mark.parametrize("bound", ["bernstein", "normal"])
def test_tv_estimate_reaches_the_half_width_and_covers_the_exact_tv(bound):
    m, q, exact = _pair()
    est = tv_estimate(m, q, half_width=0.01, bound=bound, generator=3)
    assert isinstance(est, TVEstimate) and est.half_width <= 0.01 and est.confidence == 0.95
    assert abs(est.value - exact) <= est.half_width
    assert est == tv_estimate(m, q, half_width=0.01, bound=bound, generator=3)  # same seed, same estimate


def test_rao_blackwellised_values_are_unbiased_and_less_variable_than_one_sample_values():
    m, q, exact = _pair()
    g = _last_token_values(m, q, 20000, torch.Generator().manual_seed(0))  # (n,)
    seqs = m.sample(20000, generator=1)
    plain = (1 - (q.log_prob(seqs).double() - m.log_prob(seqs).double()).exp()).clamp(min=0)  # (n,)
    assert abs(float(g.mean()) - exact) < 4 * float(g.std()) / 20000**0.5
    assert float(g.var()) < 0.8 * float(plain.var())


def test_tv_estimate_warns_when_max_samples_stops_it():
    m, q, _ = _pair()
    with pytest.warns(TVPrecisionWarning, match=r"half-width .* > target 0.001 after 64 samples"):
        est = tv_estimate(m, q, half_width=0.001, pilot=64, max_samples=64, generator=0)
    assert est.samples == 64 and est.half_width > 0.001


def test_tv_monte_carlo_still_uses_hoeffding():
    m, q, exact = _pair()
    est, hw = tv_monte_carlo(m, q, 2000, generator=0, confidence=0.95)
    assert hw == pytest.approx(math.sqrt(math.log(2 / 0.05) / 4000))
    assert abs(est - exact) <= hw
