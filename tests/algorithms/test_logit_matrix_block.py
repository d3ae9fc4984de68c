"""The duck-typed ``logit_block`` hook of :func:`logitrank.algorithms.logit_matrix` (used by cached networks)."""

import pytest
import torch

from logitrank.algorithms import ContextWindow, gram_matrix, logit_matrix
from logitrank.synth import random_isan

# float results compared across code paths: .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


class _BlockModel:
    """An ISAN seen through the protocol plus a ``logit_block`` that records its calls."""

    def __init__(self):
        self.m = random_isan(3, 6, 2, generator=0)
        self.vocab_size, self.horizon, self.device, self.dtype = 3, 6, self.m.device, self.m.dtype
        self.calls = []

    def logits(self, prefixes):
        return self.m.logits(prefixes)

    def logit_block(self, histories, futures, columns=None, *, update=None):
        self.calls.append((len(histories), len(futures)))
        out = logit_matrix(self.m, histories, futures, columns=columns, path="generic")
        update(len(histories) * len(futures))
        return out.reshape(len(histories), len(futures), -1)


H, F = [(0,), (1, 2), (2,)], [(), (1,), (0, 2)]


def test_auto_dispatches_to_logit_block_and_agrees_with_generic():
    model = _BlockModel()
    got = logit_matrix(model, H, F, top_k=2)
    assert model.calls == [(3, 3)]
    # exact: the hook runs the generic path of the same ISAN on the same groups of prefixes, with the
    # same top-k columns (chosen by the same m.logits calls): the same computation
    assert torch.equal(got, logit_matrix(model, H, F, top_k=2, path="generic"))
    assert len(model.calls) == 1  # the generic path never calls the hook


def test_gram_matrix_uses_the_hook_too():
    model = _BlockModel()
    G = gram_matrix(model, H, F)
    L = logit_matrix(model.m, H, F)
    assert model.calls and torch.allclose(G, L @ L.T, atol=1e-12, rtol=0)


def test_block_path_needs_the_method():
    plain = ContextWindow(random_isan(3, 6, 2, generator=0), 2)  # a LogitModel without the hook
    with pytest.raises(ValueError, match=r"path='block' needs a model with a logit_block method; got ContextWindow"):
        logit_matrix(plain, H, F, path="block")
