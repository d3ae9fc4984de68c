"""algorithms — logit matrices, spectra, span completion, spanners, LP sampler, learners, LinGen.

Symbols (B, t, T, V, d, n, k) are defined in the :mod:`logitrank.synth` package docstring.
"""

from ._complete_span import IncompleteSpanError, RankExceededError, SpanningSets, SpanSettings, complete_span
from ._dist_spanner import DistSpanner, dist_spanner, word_rows
from ._gram import Spectrum, downsized_spectra, gram_matrix, gram_spectrum, logit_spectrum, lowrank_spectrum
from ._greedy import GreedySampler, greedy_coefficients, greedy_sampler
from ._learn_approx import (
    ApproxLearnReport,
    ApproxNotAcceptedWarning,
    ApproxSettings,
    default_n_validation,
    default_slack_tol,
    default_threshold,
    learn_approx,
)
from ._learn_isan import LearnReport, RankMarginWarning, default_n_samples, isan_from_spanning_sets, learn_isan
from ._levels import generic_level_rank, level_logit_matrix, level_ranks
from ._lingen import ContextWindow, LinGenResult, fit_lingen_weights, lingen, position_kl
from ._lingen_bound import (
    FutureGrams,
    LinGenBound,
    corollary_c19_bound,
    future_grams,
    lingen_bound,
    lingen_distributions,
    max_abs_logit,
)
from ._logit_matrix import LogitMatrix, logit_matrix, random_k_columns, top_k_columns
from ._lp_sampler import (
    LP_SOLVERS,
    Chain,
    InfeasibleLPError,
    LevelData,
    LPSampler,
    Reconstruction,
    UniformFallbackWarning,
    extended_words,
    lp_sampler,
)
from ._mle import MLEReport, fit_isan_mle
from ._sample_logits import SampleLogitOracle, estimate_logits, logit_error, samples_per_logit
from ._query_cache import QueryCache
from ._rank import default_rank_tol, numerical_rank
from ._spanner import Spanner, barycentric_spanner, swap_bound
from ._spectrum import (
    PowerLawFit,
    avg_kl,
    avg_kl_to_rank,
    fit_power_law,
    principal_angles,
    random_subspace_angles,
    rank_one_baseline_kl,
)
from ._streams import nonsense_sequences, sample_histories_futures

__all__ = [
    "complete_span",
    "SpanSettings",
    "SpanningSets",
    "RankExceededError",
    "IncompleteSpanError",
    "learn_isan",
    "isan_from_spanning_sets",
    "LearnReport",
    "RankMarginWarning",
    "default_n_samples",
    "QueryCache",
    "barycentric_spanner",
    "Spanner",
    "swap_bound",
    "dist_spanner",
    "DistSpanner",
    "word_rows",
    "lp_sampler",
    "LPSampler",
    "LevelData",
    "Reconstruction",
    "InfeasibleLPError",
    "UniformFallbackWarning",
    "Chain",
    "LP_SOLVERS",
    "GreedySampler",
    "greedy_sampler",
    "greedy_coefficients",
    "extended_words",
    "learn_approx",
    "ApproxLearnReport",
    "ApproxSettings",
    "ApproxNotAcceptedWarning",
    "default_slack_tol",
    "default_threshold",
    "default_n_validation",
    "fit_isan_mle",
    "MLEReport",
    "logit_matrix",
    "lingen",
    "fit_lingen_weights",
    "LinGenResult",
    "position_kl",
    "ContextWindow",
    "future_grams",
    "FutureGrams",
    "lingen_bound",
    "LinGenBound",
    "lingen_distributions",
    "max_abs_logit",
    "corollary_c19_bound",
    "SampleLogitOracle",
    "samples_per_logit",
    "logit_error",
    "estimate_logits",
    "LogitMatrix",
    "top_k_columns",
    "random_k_columns",
    "gram_matrix",
    "gram_spectrum",
    "logit_spectrum",
    "lowrank_spectrum",
    "downsized_spectra",
    "Spectrum",
    "fit_power_law",
    "PowerLawFit",
    "avg_kl",
    "avg_kl_to_rank",
    "rank_one_baseline_kl",
    "principal_angles",
    "random_subspace_angles",
    "sample_histories_futures",
    "nonsense_sequences",
    "level_logit_matrix",
    "level_ranks",
    "generic_level_rank",
    "numerical_rank",
    "default_rank_tol",
]
