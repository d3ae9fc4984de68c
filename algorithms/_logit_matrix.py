"""The extended logit matrix L_M(H, F) (paper A, Definition 2.2) and its column-subsampled L_{M,k}.

Rows are histories h ∈ H, columns are pairs (f, z) ∈ F × Σ in future-major order (column
``j * V + z`` belongs to future ``futures[j]`` and token z), and the entry is the mean-centred logit
L_M[z | h ∘ f] (Definition 2.1).

Paper A never stores all V columns of a future: §3.1 keeps, for each future f, the k tokens most
likely after f *alone* (the prefix f with an empty history), and Appendix A.1.5 repeats the
experiments with k tokens drawn at random per future. Both are a (m, k) table of token ids, one row
per future; column ``j * k + c`` of the result then holds token ``columns[j, c]``.

Three evaluation paths give the same matrix (up to float rounding):

* *generic* — any :class:`logitrank.synth.LanguageModel`: every h ∘ f is one prefix sent to ``model.logits``,
  batched by the pair (len h, len f) under a memory budget;
* *isan* — a :class:`logitrank.synth.TimeVaryingISAN` is linear in its state, so L[h, (f, z)] = w_{f,t,z} · x_h
  with x_h the state after h (t = len h) and w_{f,t,z} = B̃[t+|f|, z] A[t+|f|−1, f_|f|] ⋯ A[t, f_1]
  (B̃ = B with its mean over tokens removed). The states are computed once per history and the
  (k, d) maps w once per (future, history length); each block of the matrix is one matmul;
* *block* — a model with its own ``logit_block(histories, futures, columns)`` method (the cached
  causal LMs of :mod:`logitrank.verify.models`, which reuse each history's key/value cache across
  its futures) computes whole blocks itself.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from logitrank._tokens import as_token_list
from logitrank._tokens import group_by_length as _group_by_length
from logitrank._tokens import stack_rows as _stack
from logitrank._validation import as_generator, check_int, check_memory, check_model
from logitrank.synth import LanguageModel, TimeVaryingISAN

__all__ = ["LogitMatrix", "as_token_list", "logit_matrix", "random_k_columns", "top_k_columns"]

_PATHS = ("auto", "generic", "isan", "block")
#: "auto" takes the ISAN path from this many cells on; below it the generic path is about as fast
#: and returns exactly what ``model.logits`` returns for each h ∘ f (the ISAN path agrees to ~1e-15).
FAST_PATH_MIN_CELLS = 4096
DEFAULT_MEMORY_BUDGET = 2**28  # 256 MiB of scratch memory per step


@dataclass(frozen=True)
class LogitMatrix:
    """A logit matrix together with the token columns it keeps (returned with ``return_columns=True``).

    Attributes
    ----------
    values : (n, m * k) tensor
        values[i, j * k + c] = L_M[columns[j, c] | histories[i] ∘ futures[j]].
    columns : (m, k) LongTensor
        The tokens kept for each future (all V tokens in order when no selection was asked for).
    """

    values: torch.Tensor
    columns: torch.Tensor

    @property
    def k(self) -> int:
        """Columns kept per future."""
        return self.columns.shape[1]




# -- column selection (§3.1 top-k, Appendix A.1.5 random-k) ---------------------------------------
def top_k_columns(model: LanguageModel, futures, k: int, *, batch_size: int = 4096) -> torch.Tensor:
    """The k tokens most likely after each future alone — the columns of L_{M,k} (paper A, §3.1).

    For each future f the model is asked for L_M[· | f] (f as the whole prefix, no history), and
    the k largest logits are kept in decreasing order; ties go to the smaller token id, so the
    choice is reproducible.

    Parameters
    ----------
    model : LanguageModel
    futures : (m,) sequence of token sequences, or (m, t') LongTensor
    k : int, 1 <= k <= V

    Returns
    -------
    (m, k) LongTensor on the model's device

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(5, 4, 2, generator=0)
    >>> cols = top_k_columns(m, [(), (3,)], 2)
    >>> cols.shape
    torch.Size([2, 2])
    >>> bool((m.logits([[3]])[0, cols[1]] >= m.logits([[3]]).max() - 1e-12).any())
    True
    """
    check_model("model", model)
    V = model.vocab_size
    F = as_token_list("futures", futures, V)
    k = check_int("k", k, minimum=1, maximum=V)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    return _top_k_columns(model, F, k, batch_size)


def _top_k_columns(model, F: list[tuple[int, ...]], k: int, batch_size: int) -> torch.Tensor:
    out = None
    for length, idx in sorted(_group_by_length(F).items()):
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            prefixes = torch.tensor([F[j] for j in chunk], dtype=torch.long).reshape(len(chunk), length)
            logits = model.logits(prefixes)  # (b, V)
            order = torch.sort(logits, dim=1, descending=True, stable=True).indices[:, :k]  # (b, k)
            if out is None:
                out = torch.empty(len(F), k, dtype=torch.long, device=order.device)
            out[torch.tensor(chunk, device=order.device)] = order
    return torch.empty(0, k, dtype=torch.long) if out is None else out


def random_k_columns(vocab_size: int, n_futures: int, k: int, *, generator) -> torch.Tensor:
    """k distinct tokens drawn uniformly at random for each future, in increasing order (Appendix A.1.5).

    Drawn on the CPU from ``generator`` (a CPU torch.Generator or an int seed), so a seed gives the
    same columns everywhere.

    Returns
    -------
    (n_futures, k) LongTensor

    Examples
    --------
    >>> cols = random_k_columns(10, 3, 4, generator=0)
    >>> cols.shape, bool((cols.diff(dim=1) > 0).all())
    (torch.Size([3, 4]), True)
    """
    V = check_int("vocab_size", vocab_size, minimum=1)
    m = check_int("n_futures", n_futures, minimum=0)
    k = check_int("k", k, minimum=1, maximum=V)
    gen = as_generator(generator, torch.device("cpu"))
    rows = max(1, 2**22 // V)  # draw at most ~4M uniforms at a time
    parts = [
        torch.rand(min(rows, m - s), V, generator=gen, dtype=torch.float64).topk(k, dim=1).indices
        for s in range(0, m, rows)
    ]  # each (b, k)
    cols = torch.cat(parts) if parts else torch.empty(0, k, dtype=torch.long)
    return cols.sort(dim=1).values


def _check_columns(columns, m: int, vocab_size: int, device) -> torch.Tensor:
    if not isinstance(columns, torch.Tensor):
        raise TypeError(f"columns must be a (m, k) LongTensor of token ids; got {type(columns).__name__}")
    if columns.dtype.is_floating_point or columns.dtype.is_complex or columns.dtype == torch.bool:
        raise TypeError(f"columns must hold integer token ids; got dtype {columns.dtype}")
    if columns.ndim != 2 or columns.shape[0] != m or columns.shape[1] < 1:
        raise ValueError(f"columns must have shape (m, k) = ({m}, k) with k >= 1, one row per future; got shape {tuple(columns.shape)}")
    if columns.numel() and (int(columns.min()) < 0 or int(columns.max()) >= vocab_size):
        raise ValueError(f"columns must hold token ids in [0, {vocab_size}); got ids in [{int(columns.min())}, {int(columns.max())}]")
    if columns.numel() and (columns.sort(dim=1).values.diff(dim=1) == 0).any():
        raise ValueError("columns must not repeat a token within a row (each row is a set of k tokens)")
    return columns.to(device=device, dtype=torch.long)


# -- the matrix ----------------------------------------------------------------------------------
def logit_matrix(
    model: LanguageModel,
    histories,
    futures,
    *,
    top_k: int | None = None,
    random_k: int | None = None,
    columns: torch.Tensor | None = None,
    generator=None,
    return_columns: bool = False,
    path: str = "auto",
    batch_size: int = 4096,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
):
    """The extended logit matrix L_M(H, F) of paper A, Definition 2.2, or its subsampled L_{M,k} (§3.1).

    Parameters
    ----------
    model : LanguageModel
        The model queried (any object following :class:`logitrank.synth.LanguageModel`).
    histories : (n,) sequence of token sequences, or (n, t) LongTensor
        H; lengths may differ.
    futures : (m,) sequence of token sequences, or (m, t') LongTensor
        F; lengths may differ. Each h ∘ f must be shorter than the model's horizon.
    top_k : int, optional
        Keep, per future, the k tokens most likely after the future alone (:func:`top_k_columns`).
    random_k : int, optional
        Keep k tokens drawn at random per future (:func:`random_k_columns`); needs ``generator``.
    columns : (m, k) LongTensor, optional
        Keep these tokens per future (e.g. the columns of another call). At most one of
        ``top_k``, ``random_k`` and ``columns``; with none all V tokens are kept.
    generator : torch.Generator or int, optional
        Randomness for ``random_k``.
    return_columns : bool
        Return a :class:`LogitMatrix` (values and the (m, k) columns) instead of the bare tensor.
    path : {"auto", "generic", "isan", "block"}
        "isan" uses the factorised evaluation of a :class:`logitrank.synth.TimeVaryingISAN` (module
        docstring; equal to the generic path up to float rounding); "auto" picks it when the
        model is one and the matrix has at least ``FAST_PATH_MIN_CELLS`` = 4096 (h, f) cells.
        "block" hands the whole matrix to the model's own ``logit_block(H, F, columns,
        update=...)`` method, returning an (n, m, k) tensor (e.g. the prefix-cached networks of
        :mod:`logitrank.verify.models`); "auto" picks it whenever the model has one.
    batch_size : int
        Most prefixes sent to ``model.logits`` at once (generic path).
    memory_budget : int
        Bytes of scratch memory one step may use, beyond the result itself; batches shrink to fit.
    progress : bool
        Show a tqdm bar on stderr (cells done). Nothing is printed otherwise.

    Returns
    -------
    (n, m * k) tensor, or LogitMatrix
        Entry [i, j * k + c] = L_M[columns[j, c] | histories[i] ∘ futures[j]] (k = V and
        columns[j, c] = c without a selection), on the model's device and dtype.

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 4, 2, generator=0)
    >>> L = logit_matrix(m, [(0,), (1,), (2,)], [(), (1,)])
    >>> L.shape
    torch.Size([3, 6])
    >>> bool(torch.linalg.matrix_rank(L) <= 2)
    True
    >>> Lk = logit_matrix(m, [(0,), (1,), (2,)], [(), (1,)], top_k=2, return_columns=True)
    >>> Lk.values.shape, Lk.columns.shape
    (torch.Size([3, 4]), torch.Size([2, 2]))
    >>> torch.equal(Lk.values[:, :2], L[:, Lk.columns[0]])
    True
    """
    # 1. Validate and normalise the arguments.
    check_model("model", model)
    V = model.vocab_size
    H = as_token_list("histories", histories, V)
    F = as_token_list("futures", futures, V)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    memory_budget = check_int("memory_budget", memory_budget, minimum=1)
    if path not in _PATHS:
        raise ValueError(f"path must be one of {_PATHS}; got {path!r}")
    is_isan = isinstance(model, TimeVaryingISAN)
    if path == "isan" and not is_isan:
        raise ValueError(f"path='isan' needs a synth.TimeVaryingISAN; got {type(model).__name__}")
    has_block = callable(getattr(model, "logit_block", None))
    if path == "block" and not has_block:
        raise ValueError(f"path='block' needs a model with a logit_block method; got {type(model).__name__}")
    chosen = [name for name, v in (("top_k", top_k), ("random_k", random_k), ("columns", columns)) if v is not None]
    if len(chosen) > 1:
        raise ValueError(f"pass at most one of top_k, random_k and columns; got {' and '.join(chosen)}")
    T = model.horizon
    if T is not None:
        longest = max((len(h) for h in H), default=0) + max((len(f) for f in F), default=0)
        if H and F and longest >= T:
            raise ValueError(
                f"every history ∘ future must be shorter than horizon={T} so that a next token "
                f"exists; the longest history plus the longest future has length {longest}"
            )
    device = getattr(model, "device", None)
    # 2. Choose the columns.
    if top_k is not None:
        k = check_int("top_k", top_k, minimum=1, maximum=V)
        cols = _top_k_columns(model, F, k, batch_size)
    elif random_k is not None:
        k = check_int("random_k", random_k, minimum=1, maximum=V)
        if generator is None:
            raise TypeError("random_k needs generator= (a torch.Generator or an int seed); randomness is always passed in")
        cols = random_k_columns(V, len(F), k, generator=generator)
    elif columns is not None:
        cols = _check_columns(columns, len(F), V, device)
    else:
        cols = None
    if cols is not None and device is not None:
        cols = cols.to(device)
    # 3. Evaluate, after checking that the result fits in memory.
    k = V if cols is None else cols.shape[1]
    itemsize = torch.empty(0, dtype=getattr(model, "dtype", torch.float64)).element_size()
    check_memory(
        f"logit_matrix of {len(H)} histories × {len(F)} futures × k={k} columns ({len(H)} × {len(F) * k})",
        len(H) * len(F) * k * itemsize, device,
        "keep fewer tokens per future (top_k=, random_k= or columns=), or call it on chunks of the futures; "
        "for singular values, logit_spectrum / gram_matrix never hold the whole matrix",
    )
    with _progress_bar(len(H) * len(F), progress) as bar:
        if path == "isan" or (path == "auto" and is_isan and len(H) * len(F) >= FAST_PATH_MIN_CELLS):
            out = model.logit_block(H, F, cols, update=bar.update, memory_budget=memory_budget)
        elif path == "block" or (path == "auto" and has_block and not is_isan):
            out = model.logit_block(H, F, cols, update=bar.update)  # (n, m, k)
        else:
            out = _generic_path(model, H, F, cols, batch_size, memory_budget, bar)
    if out is None:  # H or F empty
        dtype = getattr(model, "dtype", torch.float64)
        out = torch.empty(len(H), len(F), k, dtype=dtype, device=device)
    values = out.reshape(len(H), len(F) * k)  # (n, m*k), future-major
    if not return_columns:
        return values
    if cols is None:
        cols = torch.arange(V, device=values.device).expand(len(F), V).contiguous()  # (m, V)
    return LogitMatrix(values, cols)


def _generic_path(model, H, F, cols, batch_size, memory_budget, bar):
    """Query every h ∘ f, batched per (len h, len f) pair; → (n, m, k) tensor or None."""
    V = model.vocab_size
    Hg, Fg = _group_by_length(H), _group_by_length(F)
    out = None
    for a, hi in sorted(Hg.items()):
        Ha = _stack(H, hi, a, None)  # (n_a, a)
        hi_t = torch.tensor(hi)
        for b, fj in sorted(Fg.items()):
            Fb = _stack(F, fj, b, None)  # (m_b, b)
            fj_t = torch.tensor(fj)
            # model internals hold a few (B, V) tensors per call; 4 copies is a generous guess
            per_cell = 8 * (a + b) + 4 * V * 8
            chunk = max(1, min(batch_size, memory_budget // per_cell))
            cells = len(hi) * len(fj)
            for start in range(0, cells, chunk):
                flat = torch.arange(start, min(start + chunk, cells))  # (c,) cell ids, history-major
                il, jl = flat // len(fj), flat % len(fj)
                prefixes = torch.cat([Ha[il], Fb[jl]], dim=1)  # (c, a+b)
                block = model.logits(prefixes)  # (c, V)
                ig, jg = hi_t[il].to(block.device), fj_t[jl].to(block.device)
                if cols is not None:
                    block = block.gather(1, cols[jg])  # (c, k)
                if out is None:
                    out = torch.empty(len(H), len(F), block.shape[1], dtype=block.dtype, device=block.device)
                out[ig, jg] = block
                bar.update(len(flat))
    return out


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool):
    if not enabled:
        yield _NoBar()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, unit="cell", desc="logit matrix", leave=False)
    try:
        yield bar
    finally:
        bar.close()


class _NoBar:
    def update(self, n: int) -> None:
        pass
