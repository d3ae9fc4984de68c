"""Hypothesis strategies for models with known structure (public API for users' property tests).

Every strategy takes keyword-only size bounds with small defaults (so a property test stays fast)
and checks them when it is built.

Examples
--------
>>> from hypothesis import given
>>> from synth.strategies import isans
>>> @given(isans(max_vocab_size=3))
... def test_rows_sum_to_zero(model):
...     assert abs(float(model.logits([[]]).sum())) < 1e-9
>>> test_rows_sum_to_zero()
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from ._isan import TimeVaryingISAN, random_isan
from ._validation import check_int, check_real

__all__ = ["isans", "isan_sizes"]


def _bounds(name: str, lo: int, hi: int, minimum: int) -> tuple[int, int]:
    lo = check_int(f"min_{name}", lo, minimum=minimum)
    hi = check_int(f"max_{name}", hi, minimum=minimum)
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
    """Random time-varying ISANs (:func:`synth.random_isan`) with drawn sizes and seed.

    The drawn model has attributes ``vocab_size``, ``horizon`` and ``hidden_dim``; its logit rank
    is exactly ``hidden_dim`` at every level where that is possible (see :func:`random_isan`).
    """
    scale = check_real("scale", scale, low=0.0, low_open=True)
    sizes = isan_sizes(
        min_vocab_size=min_vocab_size, max_vocab_size=max_vocab_size,
        min_horizon=min_horizon, max_horizon=max_horizon,
        min_hidden_dim=min_hidden_dim, max_hidden_dim=max_hidden_dim,
    )
    seeds = st.integers(min_value=0, max_value=2**31 - 1)
    return st.builds(
        lambda vtd, seed: random_isan(*vtd, generator=seed, scale=scale, dtype=dtype, device=device),
        sizes,
        seeds,
    )
