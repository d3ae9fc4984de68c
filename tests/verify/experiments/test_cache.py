"""Logit matrices cached on disk: a second run reads the chunks; an interrupted run resumes."""

import pytest
import torch

from logitrank.algorithms import logit_matrix
from logitrank.verify.experiments._matrix_cache import cached_logit_matrix, matrix_key
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


@pytest.mark.numerics  # chunked blocks against one block call: .ci/run reruns it on other BLAS kernels
def test_second_run_reads_the_cache(lm, tmp_path):
    first = cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    assert _Counting.cells == len(H) * len(F)
    second = cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    assert _Counting.cells == len(H) * len(F)  # nothing recomputed
    assert torch.equal(first, second)  # exact: the second run loads the bytes the first one saved
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


# -- chunks are verified on load: a bad one is named, deleted and recomputed ----------------------


def _corrupt_truncate(path, other):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_empty(path, other):
    path.write_bytes(b"")


def _corrupt_garbage(path, other):
    path.write_bytes(b"not a torch file at all")


def _corrupt_foreign(path, other):
    path.write_bytes(other.read_bytes())  # a valid chunk of another matrix


def _corrupt_wrong_shape(path, other):
    record = torch.load(path, weights_only=True)
    record["logits"] = record["logits"][:, :-1].contiguous()
    torch.save(record, path)


def _corrupt_payload(path, other):
    record = torch.load(path, weights_only=True)
    record["logits"] = record["logits"] + 1.0  # same shape and dtype, altered numbers
    torch.save(record, path)


def _corrupt_old_format(path, other):
    torch.save(torch.load(path, weights_only=True)["logits"], path)  # a bare tensor (format 1)


def _corrupt_range(path, other):
    record = torch.load(path, weights_only=True)
    record["start"], record["end"] = 0, 2
    torch.save(record, path)


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_empty, _corrupt_garbage, _corrupt_foreign,
                                     _corrupt_wrong_shape, _corrupt_payload, _corrupt_old_format, _corrupt_range])
def test_bad_chunk_is_named_deleted_and_recomputed(lm, tmp_path, corrupt):
    import re

    from logitrank.verify.experiments._matrix_cache import CacheChunkWarning

    reference = cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    other_F = [(1,), (2, 3)]
    cached_logit_matrix(lm, H, other_F, cache_dir=tmp_path, chunk=2)  # another matrix's chunk of the same shape
    other = tmp_path / matrix_key(lm, H, other_F, None) / "0000000-0000002.pt"
    path = tmp_path / matrix_key(lm, H, F, None) / "0000002-0000004.pt"
    corrupt(path, other)
    _Counting.cells = 0
    with pytest.warns(CacheChunkWarning, match=re.escape(str(path)) + r" is bad: .*; deleted, recomputing it"):
        again = cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    assert _Counting.cells == len(H) * 2  # only the bad chunk was recomputed
    # exact: the other chunks are the saved bytes, and the bad one is recomputed by the same
    # computation (same chunk of futures, same process, same thread count) as the reference's
    assert torch.equal(again, reference)
    _Counting.cells = 0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2), reference)  # exact: as above
    assert _Counting.cells == 0  # the recomputed chunk verifies


def test_no_temporary_files_are_left(lm, tmp_path):
    cached_logit_matrix(lm, H, F, cache_dir=tmp_path, chunk=2)
    assert not list(tmp_path.rglob("*.tmp"))


_WORKER = """
import sys, torch
from logitrank.verify.experiments._matrix_cache import cached_logit_matrix
from logitrank.verify.models import TinyConfig, TinyLM
torch.set_num_threads(1)
lm = TinyLM.untrained(TinyConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), seed=0)
H = [(i % 50, (3 * i) % 50) for i in range(6)]
F = [(j % 50,) * (1 + j % 3) for j in range(40)]
L = cached_logit_matrix(lm, H, F, cache_dir=sys.argv[1], chunk=1)
torch.save(L, sys.argv[2])
"""


def test_two_processes_share_one_cache_folder(tmp_path):
    import subprocess
    import sys

    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-W", "error::UserWarning", "-c", _WORKER, str(cache),
                               str(tmp_path / f"L{i}.pt")], stderr=subprocess.PIPE, text=True) for i in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    L0, L1 = (torch.load(tmp_path / f"L{i}.pt", weights_only=True) for i in range(2))
    # exact: each chunk is either read from the other worker's file or computed by the same code on
    # the same chunk with one thread on the same machine (same kernels), so the bytes agree
    assert torch.equal(L0, L1)
    lm = TinyLM.untrained(TinyConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), seed=0)
    H2 = [(i % 50, (3 * i) % 50) for i in range(6)]
    F2 = [(j % 50,) * (1 + j % 3) for j in range(40)]
    assert torch.allclose(L0, logit_matrix(lm, H2, F2), atol=1e-6, rtol=0)
    assert not list(cache.rglob("*.tmp")) and len(list(cache.rglob("*.pt"))) == 40


@pytest.mark.numerics  # chunked blocks against one block call: .ci/run reruns it on other BLAS kernels
def test_unwritable_cache_warns_and_still_returns_the_matrix(lm, tmp_path):
    from logitrank.verify.experiments._matrix_cache import CacheChunkWarning

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(CacheChunkWarning, match=r"cache folder .*not-a-folder.* is not usable"):
        L = cached_logit_matrix(lm, H, F, cache_dir=blocker, chunk=2)
    assert torch.allclose(L, logit_matrix(lm, H, F), atol=1e-6, rtol=0)


def test_any_byte_damage_to_a_chunk_never_changes_the_result(tmp_path):
    """Property: flip any bytes of a stored chunk; the next load returns the true matrix (or recomputes it)."""
    import warnings

    from hypothesis import given
    from hypothesis import strategies as st

    base = TinyLM.untrained(TinyConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), seed=0)
    reference = cached_logit_matrix(base, H, F, cache_dir=tmp_path, chunk=2)
    path = tmp_path / matrix_key(base, H, F, None) / "0000002-0000004.pt"
    good = path.read_bytes()

    @given(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(1, 255)), min_size=1, max_size=8))
    def damaged(flips):
        data = bytearray(good)
        for at, xor in flips:
            data[at] ^= xor
        path.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a detected chunk warns; that is tested above
            again = cached_logit_matrix(base, H, F, cache_dir=tmp_path, chunk=2)
        # exact: a damaged chunk is detected (sha256) and recomputed by the same computation, or the
        # undamaged bytes are loaded; a damaged payload that slipped through would differ here
        assert torch.equal(again, reference)

    damaged()
