"""Logit matrices cached on disk: a second run reads the chunks; an interrupted run resumes."""

import pytest
import torch

from logitrank.algorithms import logit_matrix
from logitrank.verify._cache import cached_logit_matrix, matrix_key
from logitrank.verify.models import TinyConfig, TinyLM


class _Counting(TinyLM):
    """A TinyLM that counts the cells its logit_block computes."""

    cells = 0

    def logit_block(self, histories, futures, columns=None, *, update=None):
        type(self).cells += len(histories) * len(futures)
        return super().logit_block(histories, futures, columns, update=update)


@pytest.fixture
def lm():
    base = TinyLM.untrained(TinyConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), seed=0)
    _Counting.cells = 0
    return _Counting(base.net, name="counting")


H = [(1, 2), (3,), (4, 5, 6)]
F = [(7,), (8, 9), (), (10,), (11, 12, 13)]


def test_second_run_reads_the_cache(lm, tmp_path):
    first = cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    assert _Counting.cells == len(H) * len(F)
    second = cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    assert _Counting.cells == len(H) * len(F)  # nothing recomputed
    assert torch.equal(first, second)
    assert torch.allclose(first, logit_matrix(lm, H, F), atol=1e-6, rtol=0)


def test_interrupted_run_resumes_missing_chunks_only(lm, tmp_path):
    cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    folder = tmp_path / matrix_key(lm, H, F, None)
    chunks = sorted(folder.glob("*.pt"))
    assert len(chunks) == 3  # futures 0-1, 2-3, 4
    chunks[1].unlink()  # as if the run had stopped before this chunk
    _Counting.cells = 0
    cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    assert _Counting.cells == len(H) * 2


def test_key_changes_with_weights_data_and_columns(lm):
    key = matrix_key(lm, H, F, None)
    assert key == matrix_key(lm, H, F, None)
    assert key != matrix_key(lm, H, F[:-1], None)
    assert key != matrix_key(lm, H, F, torch.zeros(len(F), 1, dtype=torch.long))
    with torch.no_grad():
        lm.net.head.weight.add_(1.0)
    assert key != matrix_key(lm, H, F, None)


def test_model_without_fingerprint_is_refused(tmp_path):
    from logitrank.synth import random_isan

    with pytest.raises(TypeError, match=r"has no fingerprint\(\) method"):
        cached_logit_matrix(random_isan(3, 5, 2, generator=0), [(0,)], [(1,)], cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"chunk must be a positive int; got 0"):
        cached_logit_matrix(random_isan(3, 5, 2, generator=0), [(0,)], [(1,)], cache_dir=tmp_path, chunk=0)
