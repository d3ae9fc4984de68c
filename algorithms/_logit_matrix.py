"""The extended logit matrix L_M(H, F) (paper A, Definition 2.2).

Rows are histories h ∈ H, columns are pairs (f, z) ∈ F × Σ in future-major order (column
``j * V + z`` belongs to future ``futures[j]`` and token z), and the entry is the mean-centred logit
L_M[z | h ∘ f] (Definition 2.1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch

from synth._protocol import LanguageModel
from synth._validation import check_int

__all__ = ["logit_matrix", "as_token_list"]


def as_token_list(name: str, sequences, vocab_size: int) -> list[tuple[int, ...]]:
    """Normalise a collection of token sequences of any lengths to a list of int tuples.

    Accepts a (n, t) integer tensor or array (all of length t) or a sequence of 1-D sequences.
    """
    if isinstance(sequences, torch.Tensor):
        if sequences.dtype.is_floating_point or sequences.ndim != 2:
            raise ValueError(
                f"{name} given as a tensor must be a (n, t) integer tensor; got dtype "
                f"{sequences.dtype} and shape {tuple(sequences.shape)}"
            )
        rows = [tuple(r) for r in sequences.tolist()]
    elif isinstance(sequences, Sequence) or hasattr(sequences, "__array__"):
        rows = []
        for i, seq in enumerate(sequences):
            items = seq.tolist() if hasattr(seq, "tolist") else seq
            if isinstance(items, int) or not isinstance(items, Sequence):
                raise ValueError(f"{name}[{i}] must be a sequence of token ids; got {seq!r}")
            for tok in items:
                if isinstance(tok, bool) or not isinstance(tok, int):
                    raise TypeError(f"{name}[{i}] must hold int token ids; got {tok!r}")
            rows.append(tuple(items))
    else:
        raise TypeError(f"{name} must be a list of token sequences or a (n, t) LongTensor; got {type(sequences).__name__}")
    for i, row in enumerate(rows):
        for tok in row:
            if not 0 <= tok < vocab_size:
                raise ValueError(f"{name}[{i}] must hold token ids in [0, {vocab_size}); got id {tok}")
    return rows


def logit_matrix(
    model: LanguageModel,
    histories,
    futures,
    *,
    batch_size: int = 4096,
) -> torch.Tensor:
    """The extended logit matrix L_M(H, F) of paper A, Definition 2.2.

    Every concatenation h ∘ f is evaluated with ``model.logits``; prefixes of equal length are
    batched together (the protocol takes one length per call). The empty future ``()`` gives the
    next-token logits of the history itself.

    Parameters
    ----------
    model : LanguageModel
        The model queried (any object following :class:`synth.LanguageModel`).
    histories : (n,) sequence of token sequences, or (n, t) LongTensor
        H; lengths may differ.
    futures : (m,) sequence of token sequences, or (m, t') LongTensor
        F; lengths may differ. Each h ∘ f must be shorter than the model's horizon.
    batch_size : int
        Most prefixes sent to ``model.logits`` at once.

    Returns
    -------
    (n, m * V) tensor
        Entry [i, j * V + z] = L_M[z | histories[i] ∘ futures[j]], on the model's device and dtype.

    Examples
    --------
    >>> from synth import random_isan
    >>> m = random_isan(3, 4, 2, generator=0)
    >>> L = logit_matrix(m, [(0,), (1,), (2,)], [(), (1,)])
    >>> L.shape
    torch.Size([3, 6])
    >>> bool(torch.linalg.matrix_rank(L) <= 2)
    True
    """
    V = model.vocab_size
    H = as_token_list("histories", histories, V)
    F = as_token_list("futures", futures, V)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    T = model.horizon
    if T is not None:
        longest = max((len(h) for h in H), default=0) + max((len(f) for f in F), default=0)
        if H and F and longest >= T:
            raise ValueError(
                f"every history ∘ future must be shorter than horizon={T} so that a next token "
                f"exists; the longest history plus the longest future has length {longest}"
            )
    # 1. Group the (i, j) cells by the length of h ∘ f.
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, h in enumerate(H):
        for j, f in enumerate(F):
            groups[len(h) + len(f)].append((i, j))
    out = None
    # 2. One batched call per length (and per batch_size chunk); scatter into the (n, m, V) result.
    for length, cells in sorted(groups.items()):
        for start in range(0, len(cells), batch_size):
            chunk = cells[start : start + batch_size]
            prefixes = torch.tensor([H[i] + F[j] for i, j in chunk], dtype=torch.long).reshape(len(chunk), length)
            block = model.logits(prefixes)  # (b, V)
            if out is None:
                out = torch.empty(len(H), len(F), V, dtype=block.dtype, device=block.device)
            idx = torch.tensor(chunk, dtype=torch.long, device=block.device)  # (b, 2)
            out[idx[:, 0], idx[:, 1]] = block
    if out is None:  # H or F empty
        dtype = getattr(model, "dtype", torch.float64)
        device = getattr(model, "device", None)
        return torch.empty(len(H), len(F) * V, dtype=dtype, device=device)
    return out.reshape(len(H), len(F) * V)  # (n, m*V), future-major
