"""synth — language models with known structure.

Symbols used in every docstring of logitrank:

====  ==========================================================
B     batch size (number of prefixes or sequences)
t     length of a prefix
T     horizon: the length of the sequences a model generates
V     vocabulary size, |Σ|; tokens are the ints 0 … V−1
d     hidden dimension of an ISAN (the logit rank it certifies)
n     number of rows (histories) of a logit matrix
k     number of columns (tokens) kept per future
====  ==========================================================

The protocol is :class:`LanguageModel` (paper A, §2); :class:`TimeVaryingISAN` is Definition 4.2.
"""

from ._approx_error import approx_rank_error
from ._copying import CopyingISAN, copying, copying_distribution, copying_log_prob, copying_tv
from ._isan import ISAN, MAX_ENUMERATION, TimeVaryingISAN, all_sequences, random_isan
from ._oracle import CountingOracle
from ._parity import NoisyParityISAN, noisy_parity, noisy_parity_log_prob
from ._perturbed import PerturbedModel, perturbed
from ._power_law_isan import PowerLawISAN, power_law_isan
from ._protocol import LanguageModel, LogitModel, center_logits
from ._ssm import LinearSSM, random_linear_ssm

__all__ = [
    "ISAN",
    "MAX_ENUMERATION",
    "CopyingISAN",
    "CountingOracle",
    "LanguageModel",
    "LinearSSM",
    "LogitModel",
    "NoisyParityISAN",
    "PerturbedModel",
    "PowerLawISAN",
    "TimeVaryingISAN",
    "all_sequences",
    "approx_rank_error",
    "center_logits",
    "copying",
    "copying_distribution",
    "copying_log_prob",
    "copying_tv",
    "noisy_parity",
    "noisy_parity_log_prob",
    "perturbed",
    "power_law_isan",
    "random_isan",
    "random_linear_ssm",
]
