"""Hypothesis strategies for models with known structure (public API for users' property tests).

Every strategy takes keyword-only size bounds with small defaults (so a property test stays fast)
and checks them when it is built.

Examples
--------
>>> from hypothesis import given
>>> from logitrank.synth.strategies import isans
>>> @given(isans(max_vocab_size=3))
... def test_rows_sum_to_zero(model):
...     assert abs(float(model.logits([[]]).sum())) < 1e-9
>>> test_rows_sum_to_zero()
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from logitrank._validation import check_int, check_real

from ._copying import CopyingISAN, copying
from ._isan import TimeVaryingISAN, random_isan
from ._parity import NoisyParityISAN, noisy_parity
from ._power_law_isan import PowerLawISAN, power_law_isan
from ._ssm import LinearSSM, random_linear_ssm

__all__ = ["copyings", "isan_sizes", "isans", "linear_ssms", "noisy_parities", "power_law_isans"]

_SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


#: the defaults of the synth constructors (dtype None means float64): arguments at these values are left out
_DEFAULTS = {"scale": 1.0, "dtype": torch.float64, "device": None}


def _fixed(**values) -> dict:
    """Fixed keyword arguments as ``st.just`` strategies, leaving out those at the constructor's default.

    Strategies call the public constructor through ``st.builds(constructor, ...)`` with every drawn
    value an argument, so a failing example prints as a call with literal values, e.g.
    ``random_isan(2, 1, 1, generator=0)``: pasteable after ``from logitrank.synth import random_isan``
    (and ``import torch`` for a dtype). Hypothesis prints the call only when it is shorter than the
    model's repr, hence no default-valued arguments.
    """
    return {k: st.just(v) for k, v in values.items() if not (v is _DEFAULTS[k] or v == _DEFAULTS[k])}


def _bounds(name: str, lo: int, hi: int, minimum: int) -> tuple[int, int]:
    lo = check_int(f"min_{name}", lo, minimum=minimum)
    hi = check_int(f"max_{name}", hi, minimum=minimum)
    if lo > hi:
        raise ValueError(f"min_{name} must be <= max_{name}; got min_{name}={lo}, max_{name}={hi}")
    return lo, hi


def _real_bounds(name: str, lo: float, hi: float, **interval) -> tuple[float, float]:
    lo = check_real(f"min_{name}", lo, **interval)
    hi = check_real(f"max_{name}", hi, **interval)
    if lo > hi:
        raise ValueError(f"min_{name} must be <= max_{name}; got min_{name}={lo}, max_{name}={hi}")
    return lo, hi


def isan_sizes(
    *,
    min_vocab_size: int = 2,
    max_vocab_size: int = 4,
    min_horizon: int = 1,
    max_horizon: int = 5,
    min_hidden_dim: int = 1,
    max_hidden_dim: int = 4,
) -> st.SearchStrategy[tuple[int, int, int]]:
    """(V, T, d) triples inside the bounds."""
    v = _bounds("vocab_size", min_vocab_size, max_vocab_size, 2)
    t = _bounds("horizon", min_horizon, max_horizon, 1)
    d = _bounds("hidden_dim", min_hidden_dim, max_hidden_dim, 1)
    return st.tuples(st.integers(*v), st.integers(*t), st.integers(*d))


def isans(
    *,
    min_vocab_size: int = 2,
    max_vocab_size: int = 4,
    min_horizon: int = 1,
    max_horizon: int = 5,
    min_hidden_dim: int = 1,
    max_hidden_dim: int = 4,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> st.SearchStrategy[TimeVaryingISAN]:
    """Random time-varying ISANs (:func:`logitrank.synth.random_isan`) with drawn sizes and seed.

    The drawn model has attributes ``vocab_size``, ``horizon`` and ``hidden_dim``; its logit rank
    is exactly ``hidden_dim`` at every level where that is possible (see :func:`random_isan`).
    """
    scale = check_real("scale", scale, low=0.0, low_open=True)
    v, t, d = (_bounds(name, lo, hi, low) for name, lo, hi, low in (
        ("vocab_size", min_vocab_size, max_vocab_size, 2), ("horizon", min_horizon, max_horizon, 1),
        ("hidden_dim", min_hidden_dim, max_hidden_dim, 1)))
    return st.builds(random_isan, st.integers(*v), st.integers(*t), st.integers(*d), generator=_SEEDS,
                     **_fixed(scale=scale, dtype=dtype, device=device))


def noisy_parities(
    *,
    min_n_bits: int = 1,
    max_n_bits: int = 6,
    min_noise: float = 0.01,
    max_noise: float = 0.45,
    min_hidden_dim: int = 1,
    max_hidden_dim: int = 2,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> st.SearchStrategy[NoisyParityISAN]:
    """Noisy parities (:func:`logitrank.synth.noisy_parity`) with a drawn secret, noise and ISAN dimension.

    The drawn model carries ``secret``, ``noise``, ``n_bits`` and ``hidden_dim``. Noise bounds must
    lie in (0, 0.5): the ISAN needs a finite logit.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(noisy_parities(max_n_bits=3))
    ... def test_last_token_is_biased(model):
    ...     assert model.horizon == model.n_bits + 1 and model.hidden_dim in (1, 2)
    >>> test_last_token_is_biased()
    """
    n = _bounds("n_bits", min_n_bits, max_n_bits, 1)
    noise = _real_bounds("noise", min_noise, max_noise, low=0.0, high=0.5, low_open=True, high_open=True)
    dims = _bounds("hidden_dim", min_hidden_dim, max_hidden_dim, 1)
    if dims[1] > 2:
        raise ValueError(f"max_hidden_dim must be <= 2 (noisy parity ISANs have dim 1 or 2); got {dims[1]}")
    secrets = st.lists(st.integers(0, 1), min_size=n[0], max_size=n[1])
    return st.builds(noisy_parity, secrets, st.floats(*noise, allow_nan=False, allow_infinity=False),
                     hidden_dim=st.integers(*dims), **_fixed(dtype=dtype, device=device))


def copyings(
    *,
    min_n_bits: int = 1,
    max_n_bits: int = 4,
    min_strength: float = 0.5,
    max_strength: float = 40.0,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> st.SearchStrategy[CopyingISAN]:
    """Fact C.9's copying ISANs (:func:`logitrank.synth.copying`) with drawn n and strength C > 0.

    The drawn model carries ``n_bits`` and ``strength``.
    """
    n = _bounds("n_bits", min_n_bits, max_n_bits, 1)
    c = _real_bounds("strength", min_strength, max_strength, low=0.0, low_open=True)
    return st.builds(copying, st.integers(*n), st.floats(*c, allow_nan=False, allow_infinity=False),
                     **_fixed(dtype=dtype, device=device))


def linear_ssms(
    *,
    min_vocab_size: int = 2,
    max_vocab_size: int = 3,
    min_horizon: int = 1,
    max_horizon: int = 4,
    min_state_dim: int = 1,
    max_state_dim: int = 3,
    min_input_dim: int = 1,
    max_input_dim: int = 3,
    min_output_dim: int = 1,
    max_output_dim: int = 3,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> st.SearchStrategy[LinearSSM]:
    """Random linear-in-state SSMs (:func:`logitrank.synth.random_linear_ssm`) with drawn sizes and seed."""
    scale = check_real("scale", scale, low=0.0, low_open=True)
    return st.builds(
        random_linear_ssm,
        st.integers(*_bounds("vocab_size", min_vocab_size, max_vocab_size, 2)),
        st.integers(*_bounds("horizon", min_horizon, max_horizon, 1)),
        state_dim=st.integers(*_bounds("state_dim", min_state_dim, max_state_dim, 1)),
        input_dim=st.integers(*_bounds("input_dim", min_input_dim, max_input_dim, 1)),
        output_dim=st.integers(*_bounds("output_dim", min_output_dim, max_output_dim, 1)),
        generator=_SEEDS, **_fixed(scale=scale, dtype=dtype, device=device),
    )


def power_law_isans(
    *,
    min_vocab_size: int = 2,
    max_vocab_size: int = 4,
    min_horizon: int = 1,
    max_horizon: int = 6,
    min_hidden_dim: int = 2,
    max_hidden_dim: int = 8,
    min_alpha: float = 0.25,
    max_alpha: float = 2.0,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> st.SearchStrategy[PowerLawISAN]:
    """Power-law ISANs (:func:`logitrank.synth.power_law_isan`) with drawn sizes, even hidden dim, α and seed.

    The drawn model carries ``alpha``, ``scales`` and ``first_exact_level``.
    """
    scale = check_real("scale", scale, low=0.0, low_open=True)
    v = _bounds("vocab_size", min_vocab_size, max_vocab_size, 2)
    t = _bounds("horizon", min_horizon, max_horizon, 1)
    d = _bounds("hidden_dim", min_hidden_dim, max_hidden_dim, 2)
    half = ((d[0] + 1) // 2, d[1] // 2)
    if half[0] > half[1]:
        raise ValueError(
            f"min_hidden_dim..max_hidden_dim must contain an even number (the hidden dim is even); "
            f"got {d[0]}..{d[1]}"
        )
    a = _real_bounds("alpha", min_alpha, max_alpha, low=0.0, low_open=True)
    return st.builds(
        power_law_isan, st.integers(*v), st.integers(*t),
        st.sampled_from(range(2 * half[0], 2 * half[1] + 1, 2)),  # the even hidden dims in the bounds
        st.floats(*a, allow_nan=False, allow_infinity=False), generator=_SEEDS,
        **_fixed(scale=scale, dtype=dtype, device=device),
    )
