"""Deprecated: the built-in checks moved to :mod:`logitrank.verify.claims.checks`. This alias stays for
one release."""

import warnings

from ..claims import checks  # noqa: F401  (importing registers every check)

warnings.warn("logitrank.verify.checks is deprecated: the checks live in logitrank.verify.claims.checks "
              "(importing logitrank.verify registers them)", DeprecationWarning, stacklevel=2)
