"""logitrank — a theory-verification testbed for the low logit rank view of language models.

Three subpackages, imported on first use so that ``import logitrank`` stays cheap:

* :mod:`logitrank.synth` — language models with known logit structure (the protocol, ISANs, parity,
  copying, SSMs, approximately-low-rank families);
* :mod:`logitrank.algorithms` — logit matrices, spectra, span completion, spanners, the LP sampler,
  the query learners of papers A and B, LinGen;
* :mod:`logitrank.verify` — metrics, the claims ledger and its checks, real-model adapters, the CLI.

Imports flow one way, synth → algorithms → verify; private helpers shared by all three live in
this package's underscore modules (argument validation, token-sequence handling).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("logitrank")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "algorithms", "synth", "verify"]

_SUBPACKAGES = ("synth", "algorithms", "verify")


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES))
