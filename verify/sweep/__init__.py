"""Deprecated: sweeps moved to :mod:`logitrank.verify.experiments` (and its :mod:`.sweep`). This alias
stays for one release."""

import warnings

from ..experiments.sweep import *
from ..experiments.sweep import __all__  # noqa: F401

warnings.warn("logitrank.verify.sweep is deprecated: import from logitrank.verify.experiments",
              DeprecationWarning, stacklevel=2)
