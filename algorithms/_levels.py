"""Level logit matrices L_M(Σ^t, Σ^{<T−t}) — the matrices of Theorem 4.3 / Fact C.4 (paper A)."""

from __future__ import annotations

import torch

from logitrank._validation import check_int
from logitrank.synth import LanguageModel, all_sequences

from ._logit_matrix import logit_matrix
from ._rank import numerical_rank

__all__ = ["generic_level_rank", "level_logit_matrix", "level_ranks"]


def _all_futures(vocab_size: int, max_length: int) -> list[tuple[int, ...]]:
    futures: list[tuple[int, ...]] = []
    for k in range(max_length + 1):
        futures.extend(tuple(r) for r in all_sequences(vocab_size, k).tolist())
    return futures


def level_logit_matrix(model: LanguageModel, t: int, *, max_rows: int = 4096, max_cols: int = 2**16) -> torch.Tensor:
    """L_M(Σ^t, Σ^{≤T−t−1}): all histories of length t against every future that still has a next token.

    Paper A states Fact C.4 with futures Σ^{≤T−t}; futures of length T−t would ask for token T+1,
    which a model of horizon T does not define, so they are left out (they add no rank for an ISAN
    either).

    Parameters
    ----------
    model : LanguageModel with a horizon T
    t : int, 0 <= t < T

    Returns
    -------
    (V**t, (V**(T−t) − 1)/(V − 1) · V) tensor, rows and futures in lexicographic order, futures by
    increasing length.
    """
    T = model.horizon
    if T is None:
        raise ValueError("level_logit_matrix needs a model with a finite horizon; got horizon=None")
    V = model.vocab_size
    t = check_int("t", t, minimum=0, maximum=T - 1)
    rows = V**t
    cols = V * sum(V**k for k in range(T - t))
    if rows > max_rows or cols > max_cols:
        raise ValueError(
            f"level {t} has {rows} histories and {cols} columns (limits max_rows={max_rows}, "
            f"max_cols={max_cols}); pick smaller V, T or raise the limits"
        )
    return logit_matrix(model, all_sequences(V, t), _all_futures(V, T - t - 1))


def level_ranks(model: LanguageModel, *, tol: float | None = None, rtol: float | None = None, **limits) -> list[int]:
    """Numerical rank of L_M(Σ^t, Σ^{≤T−t−1}) for t = 0 … T−1 (float64 SVD).

    ``tol``/``rtol`` are passed to :func:`numerical_rank` (default: eps·max(m, n)·σ_max).

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> level_ranks(random_isan(2, 5, 3, generator=0))
    [1, 2, 3, 3, 1]
    """
    return [
        numerical_rank(level_logit_matrix(model, t, **limits), tol=tol, rtol=rtol)
        for t in range(model.horizon)
    ]


def generic_level_rank(vocab_size: int, horizon: int, hidden_dim: int, t: int) -> int:
    """min(d, V**t, V**(T−t) − 1): the rank of level t for a generic ISAN (see :func:`logitrank.synth.random_isan`)."""
    V = check_int("vocab_size", vocab_size, minimum=1)
    T = check_int("horizon", horizon, minimum=1)
    d = check_int("hidden_dim", hidden_dim, minimum=1)
    t = check_int("t", t, minimum=0, maximum=T - 1)
    return min(d, V**t, V ** (T - t) - 1)
