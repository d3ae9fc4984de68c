"""Bad inputs to the ISAN and the logit-matrix paths (issue 12, items 7–9): each a clear error."""

import numpy as np
import pytest
import torch

from logitrank.algorithms import logit_matrix
from logitrank.synth import random_isan


def _overflowing():
    """Float32 ISAN whose transitions multiply the state by 1e15 per step: 1e75 after 5 steps."""
    m = random_isan(4, 6, 3, generator=0, dtype=torch.float32)
    m.A = m.A * 1e15
    return m


OVERFLOW = r"its hidden states overflowed torch.float32 .*use dtype=torch.float64 or rescale A"
M = random_isan(4, 6, 3, generator=0)

BAD_CALLS = [
    # (call, exception, match)
    (lambda: logit_matrix(M, torch.ones(2, 2, dtype=torch.bool), [(1,)]), TypeError,
     r"histories given as a tensor must hold integer token ids \(torch.long\); got dtype torch.bool"),
    (lambda: logit_matrix(M, [(1,)], torch.ones(2, 2, dtype=torch.bool)), TypeError, r"futures .*got dtype torch.bool"),
    (lambda: _overflowing().logits([[1, 2, 3, 1, 2]]), FloatingPointError, "next-token scores are not finite: " + OVERFLOW),
    (lambda: _overflowing().log_probs([[1, 2, 3, 1, 2]]), FloatingPointError, OVERFLOW),
    (lambda: _overflowing().log_prob([[1, 2, 3, 1, 2, 1]]), FloatingPointError, "log-probabilities are not finite: " + OVERFLOW),
    (lambda: _overflowing().sample(3, generator=0), FloatingPointError, OVERFLOW),
    (lambda: _overflowing().distribution(), FloatingPointError, OVERFLOW),
    (lambda: random_isan(50000, 100, 100, generator=0), MemoryError,
     r"random_isan\(vocab_size=50000, horizon=100, hidden_dim=100\) .* needs about 1\.49e\+03 GiB.*smaller vocab_size"),
    (lambda: M.sample(10**12, generator=0), MemoryError,
     r"sample\(n=1000000000000\) .* needs about .* GiB, more than .*several calls of smaller n"),
    (lambda: logit_matrix(random_isan(256, 8, 3, generator=0), torch.zeros(20000, 2, dtype=torch.long),
                          torch.zeros(20000, 2, dtype=torch.long)), MemoryError,
     r"logit_matrix of 20000 histories × 20000 futures × k=256 columns .* needs about 763 GiB.*top_k=.*columns=.*chunks"),
    (lambda: random_isan(4, 6, 3, generator=0, scale=1e39, dtype=torch.float32), ValueError,
     r"scale=1e\+39 overflows dtype torch.float32: B's entries are scale × N\(0, 1\) draws"),
    (lambda: random_isan(4, 6, 3, generator=0, device="gpu"), ValueError,
     r"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got 'gpu'"),
    (lambda: M.to(device="gpu"), ValueError, r"device must name a torch device .*got 'gpu'"),
    (lambda: random_isan(4, 6, 3, generator=0, device=3.5), TypeError, r"device must be a torch.device or a string"),
]


@pytest.mark.parametrize("call, exc, match", BAD_CALLS, ids=[f"bad{i}" for i in range(len(BAD_CALLS))])
def test_bad_call_raises_clearly(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_named():
    with pytest.raises(ValueError, match=r"device='cuda' needs CUDA, which is not available here"):
        random_isan(4, 6, 3, generator=0, device="cuda")


def test_numpy_integers_are_accepted():
    m = random_isan(np.int64(4), np.int64(6), np.int64(3), generator=np.int64(0))
    assert m.sample(np.int64(10), generator=0).shape == (10, 6)
    ref = m.logits([[1, 2]])
    # exact (all three): numpy integers become the same (1, 2) LongTensor, then the same computation
    torch.testing.assert_close(m.logits(np.array([[1, 2]], dtype=np.int64)), ref, rtol=0, atol=0)
    torch.testing.assert_close(m.logits([[np.int64(1), np.int64(2)]]), ref, rtol=0, atol=0)
    L = logit_matrix(m, [(np.int64(1),)], [(np.int32(2),)])
    torch.testing.assert_close(L, logit_matrix(m, [(1,)], [(2,)]), rtol=0, atol=0)


def test_float32_model_without_overflow_stays_quiet():
    """The overflow check must not fire on a healthy float32 model (it could otherwise always raise)."""
    m = random_isan(4, 6, 3, generator=0, dtype=torch.float32)
    assert torch.isfinite(m.log_prob(m.sample(5, generator=1))).all()
