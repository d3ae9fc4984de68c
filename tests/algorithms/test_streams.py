"""Histories and futures from a token stream (paper A, App. A.1.1) and nonsense sets (§3.2)."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from logitrank.algorithms import nonsense_sequences, sample_histories_futures

STREAM = list(range(10_000))  # token = position, so every window is a run of consecutive ints


def _is_run(seq):
    return all(b == a + 1 for a, b in itertools.pairwise(seq))


@given(st.integers(0, 2**32 - 1), st.integers(0, 6), st.integers(0, 11), st.integers(1, 40))
def test_windows_are_contiguous_and_split_inside_bounds(seed, lo, extra, n):
    hi = max(1, lo + extra)
    H, F = sample_histories_futures(STREAM, n, n + 3, min_length=lo, max_length=hi, rng=seed, drop_empty_futures=False)
    assert len(H) == n and len(F) == n + 3
    assert all(lo <= len(h) <= hi and _is_run(h) for h in H)
    assert all(0 <= len(f) <= hi - lo and _is_run(f) for f in F)


def test_futures_are_remainders_of_their_window():
    """A future y[ℓ:] of a window of length ℓ_max ends at window start + ℓ_max − 1; with the stream
    0, 1, 2, … and a window start s, its last token is s + ℓ_max − 1 and its first s + ℓ."""
    _H, F = sample_histories_futures(STREAM, 0, 200, min_length=2, max_length=9, rng=0)
    assert len(F) < 200  # ℓ = ℓ_max gives an empty future, dropped by default
    for f in F:
        start = f[-1] - 8
        assert 2 <= f[0] - start <= 8


def test_split_points_are_uniform():
    H, _ = sample_histories_futures(STREAM, 3000, 0, min_length=3, max_length=7, rng=1)
    counts = Counter(len(h) for h in H)
    assert sorted(counts) == [3, 4, 5, 6, 7]
    assert all(abs(c - 600) < 5 * 600**0.5 for c in counts.values())  # 5 standard deviations


def test_seeded_and_documents_mode():
    docs = torch.arange(60 * 12).reshape(60, 12)  # 60 documents of 12 tokens; doc i holds 12i … 12i+11
    a = sample_histories_futures(docs, 10, 20, min_length=2, max_length=6, rng=np.random.default_rng(5))
    assert a == sample_histories_futures(docs, 10, 20, min_length=2, max_length=6, rng=5)
    assert a != sample_histories_futures(docs, 10, 20, min_length=2, max_length=6, rng=6)
    H, F = a
    firsts = [h[0] // 12 for h in H] + [f[0] // 12 for f in F if f]
    assert len(set(firsts)) == len(firsts)  # distinct documents
    assert all(s[0] // 12 == s[-1] // 12 for s in H + [f for f in F if f])  # windows stay inside


def test_ragged_documents_skip_short_ones():
    docs = [list(range(100, 103))] + [list(range(10 * i, 10 * i + 9)) for i in range(5)]
    H, _ = sample_histories_futures(docs, 5, 0, min_length=4, max_length=8, rng=0)
    assert all(h[0] < 100 for h in H)


def test_nonsense_keeps_lengths_and_tokens():
    seqs = [tuple(range(i, i + i % 5)) for i in range(50)]
    out = nonsense_sequences(seqs, rng=0)
    assert [len(s) for s in out] == [len(s) for s in seqs]
    assert Counter(t for s in out for t in s) == Counter(t for s in seqs for t in s)
    assert out != seqs and out == nonsense_sequences(seqs, rng=np.random.default_rng(0))
    from_tensor = nonsense_sequences(torch.tensor([[1, 2], [3, 4]]), rng=1)
    assert [len(s) for s in from_tensor] == [2, 2] and sorted(from_tensor[0] + from_tensor[1]) == [1, 2, 3, 4]


BAD = [
    (lambda: sample_histories_futures(STREAM, 2, min_length=5, max_length=3, rng=0), ValueError, r"min_length must be <= max_length; got min_length=5, max_length=3"),
    (lambda: sample_histories_futures(STREAM, -1, min_length=1, max_length=3, rng=0), ValueError, r"n_histories must be >= 0; got -1"),
    (lambda: sample_histories_futures(list(range(5)), 2, min_length=1, max_length=4, rng=0), ValueError, r"stream of 5 tokens has 2 windows of max_length=4; need n_histories \+ n_futures = 4"),
    (lambda: sample_histories_futures([[1, 2]], 1, min_length=1, max_length=3, rng=0), ValueError, r"source has 0 documents of at least max_length=3 tokens; need n_histories \+ n_futures = 2"),
    (lambda: sample_histories_futures(np.zeros(9), 1, min_length=1, max_length=3, rng=0), TypeError, r"source must hold integer token ids; got dtype float64"),
    (lambda: sample_histories_futures("abc", 1, min_length=1, max_length=3, rng=0), TypeError, r"source must be a token stream or a list of documents; got str"),
    (lambda: sample_histories_futures([[1, 2.5]], 1, min_length=1, max_length=1, rng=0), TypeError, r"source\[0\] must be a sequence of int token ids"),
    (lambda: sample_histories_futures(np.zeros((2, 2, 2), dtype=int), 1, min_length=1, max_length=1, rng=0), ValueError, r"1-D token stream or a 2-D array of documents; got shape \(2, 2, 2\)"),
    (lambda: nonsense_sequences([(1,), 2], rng=0), TypeError, r"sequences\[1\] must be a sequence of int token ids; got 2"),
    (lambda: nonsense_sequences(5, rng=0), TypeError, r"sequences must be a list of token sequences or a \(n, t\) tensor; got int"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD)
def test_bad_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
