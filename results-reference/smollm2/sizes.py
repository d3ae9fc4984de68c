"""Plugin for ``logitrank check --plugin``: the SmolLM2 reference run's sizes (issue 15, item 2).

Sets the Hugging Face "full" scale of :mod:`logitrank.verify.checks._real_setup` to |H| = |F| = N
(env ``LOGITRANK_REF_N``, default 32: what fits in ~25 minutes on this shared 2-core machine),
paper lengths (50–200 characters) and k = 50; every other size keeps its "full" value.
"""

import dataclasses
import os

from logitrank.verify.checks import _real_setup

N = int(os.environ.get("LOGITRANK_REF_N", "32"))
_full = _real_setup._SIZES[("hf", "full")]
_real_setup._SIZES[("hf", "full")] = dataclasses.replace(_full, n=N, n_checkpoint=N, min_chars=50, max_chars=200, k=50)
