"""Deprecated: the corpus cutter moved to :mod:`logitrank.verify.models` (``cut_histories_futures``,
``corpus_text``, ``CORPUS_NAMES``). This alias stays for one release."""

import warnings

from .models._corpus_cut import *
from .models._corpus_cut import __all__  # noqa: F401

warnings.warn("logitrank.verify.corpus_cut is deprecated: import from logitrank.verify.models",
              DeprecationWarning, stacklevel=2)
