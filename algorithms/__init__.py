"""algorithms — logit matrices, spectra, span completion, spanners, LP sampler, learners, LinGen.

Symbols (B, t, T, V, d, n, k) are defined in the :mod:`synth` package docstring.
"""

from ._levels import generic_level_rank, level_logit_matrix, level_ranks
from ._logit_matrix import logit_matrix
from ._rank import default_rank_tol, numerical_rank

__all__ = [
    "logit_matrix",
    "level_logit_matrix",
    "level_ranks",
    "generic_level_rank",
    "numerical_rank",
    "default_rank_tol",
]
