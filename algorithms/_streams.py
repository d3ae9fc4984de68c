"""Histories and futures drawn from text, as in paper A, Appendix A.1.1, and their "nonsense" versions (§3.2).

The appendix builds H and F from a dataset D of documents: pick documents at random, cut a
uniformly random contiguous window of length ℓ_max from each, draw a split point ℓ uniform in
[ℓ_min, ℓ_max], and keep the prefix y_{1:ℓ} as a history (for a window assigned to H) or the
remainder as a future (for a window assigned to F). The paper measured lengths in characters so
that one set served models with different tokenizers; here lengths are in tokens.

The nonsense sets of §3.2 and §3.3 (Option 2) pool every token of every sequence in a set, permute
the pool at random, and refill the sequences with their original lengths.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from logitrank._validation import as_rng, check_int

__all__ = ["nonsense_sequences", "sample_histories_futures"]


def _as_source(source) -> tuple[str, list[np.ndarray]]:
    """→ ("stream", [tokens]) for a 1-D source or ("documents", rows) for a 2-D / ragged one."""
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        if source.dtype.kind not in "iu":
            raise TypeError(f"source must hold integer token ids; got dtype {source.dtype}")
        if source.ndim == 1:
            return "stream", [source.astype(np.int64)]
        if source.ndim == 2:
            return "documents", [row.astype(np.int64) for row in source]
        raise ValueError(f"source must be a 1-D token stream or a 2-D array of documents; got shape {source.shape}")
    if not isinstance(source, (list, tuple)):
        raise TypeError(f"source must be a token stream or a list of documents; got {type(source).__name__}")
    if all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in source):
        return "stream", [np.asarray(source, dtype=np.int64)]
    docs = []
    for i, doc in enumerate(source):
        items = doc.tolist() if hasattr(doc, "tolist") else doc
        if not isinstance(items, (list, tuple)) or not all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in items
        ):
            raise TypeError(f"source[{i}] must be a sequence of int token ids; got {doc!r}")
        docs.append(np.asarray(items, dtype=np.int64))
    return "documents", docs


def sample_histories_futures(
    source,
    n_histories: int,
    n_futures: int | None = None,
    *,
    min_length: int,
    max_length: int,
    rng,
    drop_empty_futures: bool = True,
) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Sets H and F cut from text as in paper A, Appendix A.1.1.

    Steps (numbered as in the appendix's two paragraphs):

    1. Pick n_histories + n_futures windows of ``max_length`` tokens: from a list of documents,
       that many distinct documents of at least ``max_length`` tokens, each with a uniformly random
       window inside; from a single 1-D token stream, that many distinct uniformly random start
       positions (windows may then overlap).
    2. For each window y draw ℓ uniform in {min_length, …, max_length}.
    3. The first n_histories windows give histories y[:ℓ]; the others give futures y[ℓ:], the
       rest of the window (length max_length − ℓ). The appendix writes the future as y_{ℓ:|y|},
       which shares the token y_ℓ with the history; the split used here partitions the window.
    4. With ``drop_empty_futures`` (the default, as in the paper's footnote 6) futures of length 0
       (ℓ = max_length) are removed, so F may be a little smaller than n_futures.

    Parameters
    ----------
    source : 1-D token stream, or (N, t) array / list of documents
        Token ids (any ints); a torch tensor, numpy array or list.
    n_histories : int
    n_futures : int, optional
        Defaults to ``n_histories``.
    min_length, max_length : int
        ℓ_min <= ℓ_max; histories have lengths in [ℓ_min, ℓ_max], futures in [0, ℓ_max − ℓ_min].
    rng : numpy Generator or int seed
    drop_empty_futures : bool

    Returns
    -------
    (histories, futures) : two lists of int tuples

    Examples
    --------
    >>> H, F = sample_histories_futures(list(range(100)), 3, min_length=2, max_length=5, rng=0)
    >>> len(H), all(2 <= len(h) <= 5 for h in H), all(len(f) <= 3 for f in F)
    (3, True, True)
    >>> all(h == tuple(range(h[0], h[0] + len(h))) for h in H)   # contiguous windows of the stream
    True
    """
    kind, docs = _as_source(source)
    n_h = check_int("n_histories", n_histories, minimum=0)
    n_f = n_h if n_futures is None else check_int("n_futures", n_futures, minimum=0)
    lo = check_int("min_length", min_length, minimum=0)
    hi = check_int("max_length", max_length, minimum=1)
    if lo > hi:
        raise ValueError(f"min_length must be <= max_length; got min_length={lo}, max_length={hi}")
    gen = as_rng(rng)
    total = n_h + n_f
    # 1. Windows of length max_length.
    if kind == "stream":
        stream = docs[0]
        starts_available = len(stream) - hi + 1
        if starts_available < total:
            raise ValueError(
                f"source stream of {len(stream)} tokens has {max(starts_available, 0)} windows of "
                f"max_length={hi}; need n_histories + n_futures = {total} distinct ones"
            )
        starts = gen.choice(starts_available, size=total, replace=False)
        windows = [stream[s : s + hi] for s in starts]
    else:
        eligible = [i for i, d in enumerate(docs) if len(d) >= hi]
        if len(eligible) < total:
            raise ValueError(
                f"source has {len(eligible)} documents of at least max_length={hi} tokens; need "
                f"n_histories + n_futures = {total}"
            )
        picked = gen.choice(len(eligible), size=total, replace=False)
        windows = []
        for p in picked:
            doc = docs[eligible[p]]
            s = int(gen.integers(0, len(doc) - hi + 1))
            windows.append(doc[s : s + hi])
    # 2. Split points, uniform in {min_length, …, max_length}.
    cuts = gen.integers(lo, hi + 1, size=total)
    # 3. Prefixes for H, remainders for F.
    histories = [tuple(int(t) for t in w[:c]) for w, c in zip(windows[:n_h], cuts[:n_h])]
    futures = [tuple(int(t) for t in w[c:]) for w, c in zip(windows[n_h:], cuts[n_h:])]
    # 4. Drop empty futures.
    if drop_empty_futures:
        futures = [f for f in futures if f]
    return histories, futures


def nonsense_sequences(sequences, *, rng) -> list[tuple[int, ...]]:
    """The "nonsense" version of a set of sequences (paper A, §3.2 and §3.3 Option 2).

    All tokens of all sequences are pooled, the pool is permuted uniformly at random, and the
    sequences are refilled in order with their original lengths: the multiset of tokens and the
    length of every sequence are kept, everything else is scrambled.

    Parameters
    ----------
    sequences : list of token sequences, or (n, t) tensor / array
    rng : numpy Generator or int seed

    Returns
    -------
    list of int tuples, same lengths as ``sequences``

    Examples
    --------
    >>> S = [(1, 2, 3), (), (4, 5)]
    >>> N = nonsense_sequences(S, rng=0)
    >>> [len(s) for s in N], sorted(t for s in N for t in s)
    ([3, 0, 2], [1, 2, 3, 4, 5])
    """
    if isinstance(sequences, torch.Tensor):
        sequences = sequences.detach().cpu().tolist()
    elif isinstance(sequences, np.ndarray):
        sequences = sequences.tolist()
    if not isinstance(sequences, (list, tuple)):
        raise TypeError(f"sequences must be a list of token sequences or a (n, t) tensor; got {type(sequences).__name__}")
    rows = []
    for i, seq in enumerate(sequences):
        items = seq.tolist() if hasattr(seq, "tolist") else seq
        if not isinstance(items, (list, tuple)) or not all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in items
        ):
            raise TypeError(f"sequences[{i}] must be a sequence of int token ids; got {seq!r}")
        rows.append([int(t) for t in items])
    pool = np.array([t for row in rows for t in row], dtype=np.int64)
    pool = pool[as_rng(rng).permutation(len(pool))]
    out, pos = [], 0
    for row in rows:
        out.append(tuple(int(t) for t in pool[pos : pos + len(row)]))
        pos += len(row)
    return out
