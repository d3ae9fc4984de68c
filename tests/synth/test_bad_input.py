"""A table of bad calls that must raise, each with the message a user needs."""

import math

import numpy as np
import pytest
import torch

from logitrank.synth import ISAN, CountingOracle, TimeVaryingISAN, random_isan

M = random_isan(3, 4, 2, generator=0)
A, B, X0 = M.A, M.B, M.x0
NAN_B = B.clone()
NAN_B[0, 0, 0] = math.nan

BAD_CALLS = [
    # (call, exception, message pattern)
    (lambda: M.logits(torch.tensor([[0, 3]])), ValueError, r"prefixes must hold token ids in \[0, 3\); got id 3"),
    (lambda: M.logits(torch.tensor([[0, -1]])), ValueError, r"prefixes must hold token ids in \[0, 3\); got id -1"),
    (lambda: M.logits(torch.tensor([0, 1])), ValueError, r"prefixes must have shape \(B, t\); got shape \(2,\)"),
    (lambda: M.logits(torch.tensor([[0.0, 1.0]])), TypeError, r"prefixes must hold integer token ids \(torch.long\); got dtype torch.float32"),
    (lambda: M.logits(torch.zeros(1, 4, dtype=torch.long)), ValueError, r"prefixes must have length <= 3 \(= horizon 4 − 1"),
    (lambda: M.logits([[0, 1], [2]]), ValueError, r"prefixes must be a rectangular \(B, t\) array"),
    (lambda: M.logits("01"), TypeError, r"prefixes must be a LongTensor of token ids; got str"),
    (lambda: M.log_probs(torch.zeros(1, 5, dtype=torch.long)), ValueError, r"prefixes must have length <= 3"),
    (lambda: M.log_prob(torch.zeros(1, 5, dtype=torch.long)), ValueError, r"sequences must have length <= 4 \(the horizon\); got length 5"),
    (lambda: M.states(torch.zeros(1, 5, dtype=torch.long)), ValueError, r"prefixes must have length <= 4"),
    (lambda: M.sample(-1, generator=0), ValueError, r"n must be >= 0; got -1"),
    (lambda: M.sample(2.5, generator=0), TypeError, r"n must be an integer; got 2.5"),
    (lambda: M.sample(2, generator=None), TypeError, r"generator must be a torch.Generator or an int seed; got NoneType"),
    (lambda: M.sample(2, generator=np.random.default_rng(0)), TypeError, r"generator must be a torch.Generator or an int seed"),
    (lambda: M.sample(2, generator=0, length=5), ValueError, r"length must be <= 4; got 5"),
    (lambda: TimeVaryingISAN(A, B[:, :2], X0), ValueError, r"B must have shape \(T, V, d\) with V=3 \(set by an earlier argument\); got shape \(4, 2, 2\)"),
    (lambda: TimeVaryingISAN(A, B, X0[:1]), ValueError, r"x0 must have shape \(d,\) with d=2"),
    (lambda: TimeVaryingISAN(A[0], B, X0), ValueError, r"A must have shape \(T, V, d, d\) \(4 dims\); got shape \(3, 2, 2\)"),
    (lambda: TimeVaryingISAN(A, NAN_B, X0), ValueError, r"B must be finite; got 1 non-finite entries"),
    (lambda: TimeVaryingISAN(A, B, X0.float()), TypeError, r"A, B and x0 must share one dtype; got torch.float64, torch.float64, torch.float32"),
    (lambda: TimeVaryingISAN(A.long(), B, X0), TypeError, r"A must be a floating tensor; got dtype torch.int64"),
    (lambda: TimeVaryingISAN(A.numpy(), B, X0), TypeError, r"A must be a torch.Tensor; got ndarray"),
    (lambda: TimeVaryingISAN(A, B, X0.to("meta")), ValueError, r"x0 is on device meta, expected cpu"),
    (lambda: TimeVaryingISAN(A[:, :1], B[:, :1], X0), ValueError, r"vocabulary V >= 2"),
    (lambda: TimeVaryingISAN(A, B, X0, dtype=torch.int32), TypeError, r"dtype must be a floating torch dtype"),
    (lambda: ISAN(A[0], B[0], X0, horizon=0), ValueError, r"horizon must be >= 1; got 0"),
    (lambda: random_isan(1, 4, 2, generator=0), ValueError, r"vocab_size must be >= 2; got 1"),
    (lambda: random_isan(3, 0, 2, generator=0), ValueError, r"horizon must be >= 1; got 0"),
    (lambda: random_isan(3, 4, 0, generator=0), ValueError, r"hidden_dim must be >= 1; got 0"),
    (lambda: random_isan(3, 4, 2, generator=0, scale=0.0), ValueError, r"scale must lie in \(0.0, inf\]; got 0.0"),
    (lambda: random_isan(3, 4, 2, generator=0, scale=math.inf), ValueError, r"scale must be finite"),
    (lambda: random_isan(3, 4, 2, generator="x"), TypeError, r"generator must be a torch.Generator or an int seed; got str"),
    (lambda: M.distribution(max_sequences=0), ValueError, r"max_sequences must be >= 1; got 0"),
    (lambda: CountingOracle(object()), TypeError, r"model must follow the synth.LanguageModel protocol"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD_CALLS, ids=[f"bad{i}" for i in range(len(BAD_CALLS))])
def test_bad_calls_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_generator_on_the_wrong_device_is_named():
    from logitrank._validation import as_generator

    with pytest.raises(ValueError, match=r"generator is on device cpu, but the model is on meta"):
        as_generator(torch.Generator(), torch.device("meta"))


def test_numpy_and_list_prefixes_are_accepted():
    expected = M.logits(torch.tensor([[0, 1]]))
    torch.testing.assert_close(M.logits(np.array([[0, 1]])), expected)
    torch.testing.assert_close(M.logits([[0, 1]]), expected)
