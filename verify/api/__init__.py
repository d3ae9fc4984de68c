"""Deprecated: served models moved to :mod:`logitrank.verify.models` (the client and the server) and
:mod:`logitrank.verify.experiments` (``hidden_width``). This alias stays for one release."""

import warnings

from ..experiments._width import HiddenWidth, hidden_width
from ..models.served import *

warnings.warn("logitrank.verify.api is deprecated: import from logitrank.verify.models (APIModel, serve, ...) "
              "and logitrank.verify.experiments (hidden_width)", DeprecationWarning, stacklevel=2)

__all__ = ["METHODS", "APICacheWarning", "APIModel", "APIModelError", "APISettings", "HiddenWidth", "InconsistentServerError",
           "QueryRecord", "RecoveryError", "RequestRefusedError", "RestrictedAPIModel", "ServerFaults",
           "ServerUnreachableError", "TokenMapError", "hidden_width", "running_server", "serve", "serve_app"]
