"""Token-sequence helpers shared by the three subpackages.

Histories and futures arrive as (n, t) integer tensors or as lists of token sequences of mixed
lengths; these helpers normalise them and group them by length (Fact C.4 is per history length,
so every batched evaluation works one length at a time).
"""

from __future__ import annotations

import numbers
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["as_token_list", "group_by_length", "stack_rows"]


def group_by_length(seqs: list[tuple[int, ...]]) -> dict[int, list[int]]:
    """Indices of ``seqs`` grouped by sequence length: {length: [i, ...]} in input order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(seqs):
        groups[len(s)].append(i)
    return groups


def stack_rows(seqs: list[tuple[int, ...]], idx: list[int], length: int, device) -> torch.Tensor:
    """The sequences at ``idx`` (all of one length) as a (len(idx), length) LongTensor."""
    return torch.tensor([seqs[i] for i in idx], dtype=torch.long, device=device).reshape(len(idx), length)


def as_token_list(name: str, sequences, vocab_size: int) -> list[tuple[int, ...]]:
    """Normalise a collection of token sequences of any lengths to a list of int tuples.

    Accepts a (n, t) integer tensor or array (all of length t) or a sequence of 1-D sequences.
    """
    if isinstance(sequences, torch.Tensor):
        if sequences.dtype == torch.bool or sequences.dtype.is_complex:
            raise TypeError(f"{name} given as a tensor must hold integer token ids (torch.long); got dtype {sequences.dtype}")
        if sequences.dtype.is_floating_point or sequences.ndim != 2:
            raise ValueError(
                f"{name} given as a tensor must be a (n, t) integer tensor; got dtype "
                f"{sequences.dtype} and shape {tuple(sequences.shape)}"
            )
        rows = [tuple(r) for r in sequences.tolist()]
    elif isinstance(sequences, Sequence) or hasattr(sequences, "__array__"):
        if isinstance(sequences, (str, bytes)):
            raise TypeError(f"{name} must be a list of token-id sequences, not text; got {sequences!r} "
                            "(encode text to token ids first)")
        rows = []
        for i, seq in enumerate(sequences):
            items = seq.tolist() if hasattr(seq, "tolist") else seq
            if isinstance(items, (str, bytes)):
                raise TypeError(f"{name}[{i}] must be a sequence of int token ids, not text; got {seq!r} "
                                "(encode text to token ids first)")
            if isinstance(items, int) or not isinstance(items, Sequence):
                raise ValueError(f"{name}[{i}] must be a sequence of token ids; got {seq!r}")
            for tok in items:
                if isinstance(tok, (bool, np.bool_)) or not isinstance(tok, numbers.Integral):
                    raise TypeError(f"{name}[{i}] must hold int token ids; got {tok!r}")
            rows.append(tuple(int(tok) for tok in items))  # numpy integers become ints
    else:
        raise TypeError(f"{name} must be a list of token sequences or a (n, t) LongTensor; got {type(sequences).__name__}")
    for i, row in enumerate(rows):
        for tok in row:
            if not 0 <= tok < vocab_size:
                raise ValueError(f"{name}[{i}] must hold token ids in [0, {vocab_size}); got id {tok}")
    return rows
