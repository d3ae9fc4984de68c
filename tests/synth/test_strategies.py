"""The public hypothesis strategies: drawn objects respect their bounds; bad bounds fail at build time."""

import pytest
import torch
from hypothesis import given, settings

from logitrank.synth import CopyingISAN, LinearSSM, NoisyParityISAN, PowerLawISAN, TimeVaryingISAN
from logitrank.synth.strategies import copyings, isans, linear_ssms, noisy_parities, power_law_isans


@given(noisy_parities(min_n_bits=2, max_n_bits=5, min_noise=0.1, max_noise=0.2, min_hidden_dim=1, max_hidden_dim=1))
def test_noisy_parities_respect_bounds(model):
    assert isinstance(model, NoisyParityISAN)
    assert 2 <= model.n_bits <= 5 and 0.1 <= model.noise <= 0.2 and model.hidden_dim == 1
    assert len(model.secret) == model.n_bits and set(model.secret) <= {0, 1}


@given(copyings(min_n_bits=2, max_n_bits=3, min_strength=5.0, max_strength=6.0, dtype=torch.float32))
def test_copyings_respect_bounds(model):
    assert isinstance(model, CopyingISAN) and model.dtype == torch.float32
    assert 2 <= model.n_bits <= 3 and 5.0 <= model.strength <= 6.0 and model.hidden_dim == model.n_bits + 1


@given(linear_ssms(min_vocab_size=3, max_vocab_size=3, min_horizon=2, max_horizon=2, min_state_dim=2, max_state_dim=4,
                   min_input_dim=1, max_input_dim=1, min_output_dim=2, max_output_dim=3))
def test_linear_ssms_respect_bounds(model):
    assert isinstance(model, LinearSSM)
    assert (model.vocab_size, model.horizon, model.input_dim) == (3, 2, 1)
    assert 2 <= model.state_dim <= 4 and 2 <= model.output_dim <= 3


@given(power_law_isans(min_vocab_size=2, max_vocab_size=2, min_hidden_dim=3, max_hidden_dim=7, min_alpha=0.5, max_alpha=0.6))
def test_power_law_isans_respect_bounds_and_draw_even_dims(model):
    assert isinstance(model, PowerLawISAN)
    assert model.hidden_dim in (4, 6) and 0.5 <= model.alpha <= 0.6 and model.vocab_size == 2


@settings(max_examples=10)
@given(isans(min_vocab_size=3, max_vocab_size=3, min_hidden_dim=2, max_hidden_dim=2))
def test_isans_still_draw_random_isans(model):
    assert type(model) is TimeVaryingISAN and model.vocab_size == 3 and model.hidden_dim == 2


def test_seeds_vary_across_draws():
    """Strategies draw seeds, not just sizes: fixed sizes still give different models."""
    drawn = []

    @settings(max_examples=5, database=None)
    @given(linear_ssms(min_vocab_size=2, max_vocab_size=2, min_horizon=2, max_horizon=2, max_state_dim=1, max_input_dim=1, max_output_dim=1))
    def collect(model):
        drawn.append(float(model.U.sum()))

    collect()
    assert len(set(drawn)) > 1


BAD_STRATEGIES = [
    (lambda: noisy_parities(min_n_bits=0), ValueError, r"min_n_bits must be >= 1; got 0"),
    (lambda: noisy_parities(min_n_bits=4, max_n_bits=3), ValueError, r"min_n_bits must be <= max_n_bits; got min_n_bits=4, max_n_bits=3"),
    (lambda: noisy_parities(min_noise=0.0), ValueError, r"min_noise must lie in \(0.0, 0.5\); got 0.0"),
    (lambda: noisy_parities(max_noise=0.5), ValueError, r"max_noise must lie in \(0.0, 0.5\); got 0.5"),
    (lambda: noisy_parities(min_noise=0.3, max_noise=0.2), ValueError, r"min_noise must be <= max_noise; got min_noise=0.3, max_noise=0.2"),
    (lambda: noisy_parities(max_hidden_dim=3), ValueError, r"max_hidden_dim must be <= 2 \(noisy parity ISANs have dim 1 or 2\); got 3"),
    (lambda: noisy_parities(max_n_bits=2.5), TypeError, r"max_n_bits must be an integer; got 2.5"),
    (lambda: copyings(min_strength=0.0), ValueError, r"min_strength must lie in \(0.0, inf\]; got 0.0"),
    (lambda: copyings(min_n_bits=3, max_n_bits=2), ValueError, r"min_n_bits must be <= max_n_bits"),
    (lambda: copyings(max_strength=float("inf")), ValueError, r"max_strength must be finite; got inf"),
    (lambda: linear_ssms(min_vocab_size=1), ValueError, r"min_vocab_size must be >= 2; got 1"),
    (lambda: linear_ssms(min_output_dim=0), ValueError, r"min_output_dim must be >= 1; got 0"),
    (lambda: linear_ssms(min_state_dim=3, max_state_dim=2), ValueError, r"min_state_dim must be <= max_state_dim"),
    (lambda: linear_ssms(scale=0.0), ValueError, r"scale must lie in \(0.0, inf\]; got 0.0"),
    (lambda: power_law_isans(min_hidden_dim=1), ValueError, r"min_hidden_dim must be >= 2; got 1"),
    (lambda: power_law_isans(min_hidden_dim=5, max_hidden_dim=5), ValueError, r"min_hidden_dim..max_hidden_dim must contain an even number"),
    (lambda: power_law_isans(min_alpha=0.0), ValueError, r"min_alpha must lie in \(0.0, inf\]; got 0.0"),
    (lambda: power_law_isans(min_alpha=2.0, max_alpha=1.0), ValueError, r"min_alpha must be <= max_alpha; got min_alpha=2.0, max_alpha=1.0"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD_STRATEGIES, ids=[f"bad{i}" for i in range(len(BAD_STRATEGIES))])
def test_bad_bounds_fail_when_the_strategy_is_built(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
