"""algorithms — logit matrices, spectra, span completion, spanners, LP sampler, learners, LinGen.

Symbols (B, t, T, V, d, n, k) are defined in the :mod:`logitrank.synth` package docstring.
"""

from ._angles import principal_angles, random_subspace_angles
from ._approx_report import ApproxLearnReport, ApproxNotAcceptedWarning
from ._approx_run import ApproxRunReport
from ._approx_settings import ApproxSettings, default_n_validation, default_slack_tol, default_threshold
from ._certificate import (
    TVCertificate,
    certificate_power,
    default_n_cert,
    oracle_widening,
    tv_certificate,
    tv_statistic,
)
from ._complete_span import IncompleteSpanError, RankExceededError, SpanningSets, SpanSettings, complete_span
from ._dist_spanner import DistSpanner, dist_spanner, word_rows
from ._gram import Spectrum, downsized_spectra, gram_matrix, gram_spectrum, logit_spectrum, lowrank_spectrum
from ._gram_accumulator import GramAccumulator
from ._gram_sum import GramSum
from ._greedy import GreedySampler, greedy_coefficients, greedy_sampler
from ._kl_rank import avg_kl, avg_kl_to_rank, rank_one_baseline_kl
from ._learn_approx import learn_approx
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
from ._power_law import PowerLawFit, fit_power_law
from ._query_cache import QueryCache
from ._rank import default_rank_tol, numerical_rank
from ._sample_logits import SampleLogitOracle, estimate_logits, logit_error, samples_per_logit
from ._spanner import Spanner, barycentric_spanner, swap_bound
from ._streams import nonsense_sequences, sample_histories_futures

__all__ = [
    "LP_SOLVERS",
    "ApproxLearnReport",
    "ApproxNotAcceptedWarning",
    "ApproxRunReport",
    "ApproxSettings",
    "Chain",
    "ContextWindow",
    "DistSpanner",
    "FutureGrams",
    "GramAccumulator",
    "GramSum",
    "GreedySampler",
    "IncompleteSpanError",
    "InfeasibleLPError",
    "LPSampler",
    "LearnReport",
    "LevelData",
    "LinGenBound",
    "LinGenResult",
    "LogitMatrix",
    "MLEReport",
    "PowerLawFit",
    "QueryCache",
    "RankExceededError",
    "RankMarginWarning",
    "Reconstruction",
    "SampleLogitOracle",
    "SpanSettings",
    "Spanner",
    "SpanningSets",
    "Spectrum",
    "TVCertificate",
    "UniformFallbackWarning",
    "avg_kl",
    "avg_kl_to_rank",
    "barycentric_spanner",
    "certificate_power",
    "complete_span",
    "corollary_c19_bound",
    "default_n_cert",
    "default_n_samples",
    "default_n_validation",
    "default_rank_tol",
    "default_slack_tol",
    "default_threshold",
    "dist_spanner",
    "downsized_spectra",
    "estimate_logits",
    "extended_words",
    "fit_isan_mle",
    "fit_lingen_weights",
    "fit_power_law",
    "future_grams",
    "generic_level_rank",
    "gram_matrix",
    "gram_spectrum",
    "greedy_coefficients",
    "greedy_sampler",
    "isan_from_spanning_sets",
    "learn_approx",
    "learn_isan",
    "level_logit_matrix",
    "level_ranks",
    "lingen",
    "lingen_bound",
    "lingen_distributions",
    "logit_error",
    "logit_matrix",
    "logit_spectrum",
    "lowrank_spectrum",
    "lp_sampler",
    "max_abs_logit",
    "nonsense_sequences",
    "numerical_rank",
    "oracle_widening",
    "position_kl",
    "principal_angles",
    "random_k_columns",
    "random_subspace_angles",
    "rank_one_baseline_kl",
    "sample_histories_futures",
    "samples_per_logit",
    "swap_bound",
    "top_k_columns",
    "tv_certificate",
    "tv_statistic",
    "word_rows",
]
