"""Spectra of a logit matrix without materialising it: the Gram matrix L Lᵀ over blocks of futures.

The singular values of L = L_{M,k}(H, F), an (n, m·k) matrix with m·k ≫ n in paper A's experiments
(§3.1: n = m ≈ 10⁴, k = 50), are the square roots of the eigenvalues of the (n, n) Gram matrix

    G = L Lᵀ = Σ_{f ∈ F} L(H, {f}) L(H, {f})ᵀ,

the same sum Fact C.20 uses. Accumulating it over blocks of futures in float64 needs O(n²) memory
instead of O(n·m·k), and its eigenvectors are the left singular vectors of L. The price is
precision at the bottom of the spectrum: eigenvalues carry an absolute error of about
eps·n·σ₁², so σ_i keeps a relative error near eps·n·(σ₁/σ_i)²/2 (≈1e-10 for σ₁/σ_i = 10³ and
n = 10⁴ in float64). Paper A used ``torch.svd_lowrank`` on the materialised matrix instead
(Appendix A.1.3); :func:`lowrank_spectrum` reproduces that path for comparison.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from logitrank._validation import check_int, check_memory, check_model
from logitrank.synth import LanguageModel, TimeVaryingISAN

from ._gram_spectrum import Spectrum, gram_spectrum, lowrank_spectrum
from ._gram_sum import GramSum, RowPermuted
from ._logit_matrix import (
    _PATHS,
    DEFAULT_MEMORY_BUDGET,
    FAST_PATH_MIN_CELLS,
    _check_columns,
    _progress_bar,
    _top_k_columns,
    as_token_list,
    logit_matrix,
    random_k_columns,
)

__all__ = ["Spectrum", "downsized_spectra", "gram_matrix", "gram_spectrum", "logit_spectrum", "lowrank_spectrum"]


def _resolve_columns(model, F, top_k, random_k, columns, generator, batch_size):
    chosen = [name for name, v in (("top_k", top_k), ("random_k", random_k), ("columns", columns)) if v is not None]
    if len(chosen) > 1:
        raise ValueError(f"pass at most one of top_k, random_k and columns; got {' and '.join(chosen)}")
    V = model.vocab_size
    device = getattr(model, "device", None)
    if top_k is not None:
        return _top_k_columns(model, F, check_int("top_k", top_k, minimum=1, maximum=V), batch_size)
    if random_k is not None:
        if generator is None:
            raise TypeError("random_k needs generator= (a torch.Generator or an int seed); randomness is always passed in")
        return random_k_columns(V, len(F), check_int("random_k", random_k, minimum=1, maximum=V), generator=generator)
    if columns is not None:
        return _check_columns(columns, len(F), V, device)
    return None  # every token


def _prepare(model, histories, futures, batch_size, memory_budget, top_k, random_k, columns, generator, path):
    """Validate the common arguments; → (H, F, cols or None, k, batch_size, memory_budget)."""
    if path not in _PATHS:
        raise ValueError(f"path must be one of {_PATHS}; got {path!r}")
    check_model("model", model)
    V = model.vocab_size
    H = as_token_list("histories", histories, V)
    F = as_token_list("futures", futures, V)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    memory_budget = check_int("memory_budget", memory_budget, minimum=1)
    cols = _resolve_columns(model, F, top_k, random_k, columns, generator, batch_size)
    k = V if cols is None else cols.shape[1]
    return H, F, cols, k, batch_size, memory_budget


def _future_blocks(model, H, F, cols, *, path, batch_size, memory_budget, progress, stops=(), reuse_states=True):
    """Yield (end, block): consecutive column blocks L(H, F[start:end]) as (n, c·k) tensors.

    Block ends also fall on every value in ``stops`` so callers can snapshot partial sums. On the
    ISAN path the history states are computed once for all blocks
    (:meth:`logitrank.synth.TimeVaryingISAN.logit_blocks`); ``reuse_states=False`` recomputes them
    per block through :func:`logit_matrix` (the route before issue 14, kept for comparison).
    """
    n, k = len(H), (model.vocab_size if cols is None else cols.shape[1])
    if path == "auto":  # decide once for the whole matrix, so every block takes the same path
        fast = isinstance(model, TimeVaryingISAN) and n * len(F) >= FAST_PATH_MIN_CELLS
        path = "isan" if fast else ("block" if callable(getattr(model, "logit_block", None)) else "generic")
    itemsize = 8  # blocks are converted to float64 for accumulation
    per_future = max(1, 3 * n * k * itemsize)  # the block, its float64 copy, and a spare
    bounds = sorted({0, len(F), *[s for s in stops if 0 < s < len(F)]})
    if path == "isan" and reuse_states:
        # one reused buffer in the model's dtype (plus its float64 copy unless it is float64) and
        # the block's (c, k, d) maps: wider blocks in the same budget mean fewer, longer BLAS calls
        own = model.A.element_size()
        per_future = max(1, n * k * (own + (0 if model.dtype == torch.float64 else 8)) + 2 * k * model.hidden_dim * own)
        chunk = max(1, memory_budget // per_future)
        # histories sorted by length make each length's rows one slice of the block (no scatter);
        # the rows are put back in the caller's order before yielding only when they moved
        perm = sorted(range(n), key=lambda i: len(H[i]))
        moved = perm != list(range(n))
        inv = torch.empty(n, dtype=torch.long)
        inv[torch.tensor(perm, dtype=torch.long)] = torch.arange(n)
        H_sorted = [H[i] for i in perm]
        with _progress_bar(n * len(F), progress) as bar:
            start = 0
            for end, block in model.logit_blocks(H_sorted, F, cols, futures_per_block=chunk, stops=stops, reuse=True):
                if moved:
                    block = RowPermuted(block, inv.to(block.device))
                bar.update(n * (end - start))
                start = end
                yield end, block
        return
    chunk = max(1, memory_budget // per_future)
    with _progress_bar(n * len(F), progress) as bar:
        for lo, hi in itertools.pairwise(bounds):
            for start in range(lo, hi, chunk):
                end = min(start + chunk, hi)
                block = logit_matrix(
                    model, H, F[start:end], columns=None if cols is None else cols[start:end], path=path,
                    batch_size=batch_size, memory_budget=memory_budget,
                )  # (n, c*k)
                bar.update(n * (end - start))
                yield end, block


def gram_matrix(
    model: LanguageModel,
    histories,
    futures,
    *,
    top_k: int | None = None,
    random_k: int | None = None,
    columns: torch.Tensor | None = None,
    generator=None,
    path: str = "auto",
    batch_size: int = 4096,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    product: str = "symmetric",
) -> torch.Tensor:
    """G = L Lᵀ for L = L_{M,k}(H, F), accumulated in float64 over blocks of futures (Fact C.20's sum).

    Takes the arguments of :func:`logit_matrix`; the matrix itself is never held, only one block of
    futures at a time (sized by ``memory_budget``) and the (n, n) result. ``product="symmetric"``
    (default) forms each block's contribution on one triangle only (half the FLOPs);
    ``product="full"`` runs a plain ``addmm`` (the route before issue 14; equal to rounding);
    every product returns an exactly symmetric G on any BLAS, its entries equal to L Lᵀ up to
    float64 summation rounding (which BLAS kernel ran decides the last bits);
    ``product="factorised"`` (a :class:`logitrank.synth.TimeVaryingISAN` only) never forms blocks:
    G = X̃ M X̃ᵀ from the model's states and maps (:meth:`~logitrank.synth.TimeVaryingISAN.gram_factors`),
    O(m·k·(ℓd)² + n²·ℓd) work for ℓ history lengths — a shortcut that no real model has, so
    spectra of real models still go through the block sums measured by ``benchmarks/bench_gram.py``.

    Returns
    -------
    (n, n) float64 tensor

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> from logitrank.algorithms import logit_matrix
    >>> m = random_isan(4, 6, 3, generator=0)
    >>> H, F = [(0,), (1,), (2,), (3,)], [(), (1,), (2, 3)]
    >>> G = gram_matrix(m, H, F, top_k=2, memory_budget=1)   # one future per block
    >>> L = logit_matrix(m, H, F, top_k=2)
    >>> bool(torch.allclose(G, L @ L.T, rtol=0, atol=1e-12))
    True
    """
    H, F, cols, _, batch_size, memory_budget = _prepare(
        model, histories, futures, batch_size, memory_budget, top_k, random_k, columns, generator, path
    )
    return _accumulate(model, H, F, cols, path, batch_size, memory_budget, progress, _check_product(product))


def _check_product(product) -> str:
    if product not in _PRODUCTS:
        raise ValueError(f"product must be one of {_PRODUCTS}; got {product!r}")
    return product


_PRODUCTS = ("symmetric", "full", "factorised")


def _accumulate(model, H, F, cols, path, batch_size, memory_budget, progress, product="symmetric",
                reuse_states=True, keep_sum=False, into=None):
    """G = L Lᵀ as an (n, n) float64 tensor, or (``keep_sum``, block products) the :class:`GramSum`;
    ``into``: add to this running :class:`GramSum` of the same histories instead (a sum over slices
    of the futures, e.g. checkpointed between slices by ``benchmarks/bench_gram.py --paper-size``)."""
    if product == "factorised":
        if not isinstance(model, TimeVaryingISAN) or path not in ("auto", "isan"):
            raise ValueError(f"product='factorised' needs a synth.TimeVaryingISAN on path 'auto' or 'isan'; "
                             f"got {type(model).__name__} with path={path!r}")
        check_memory(f"the ({len(H)}, {len(H)}) float64 Gram matrix", 2 * 8 * len(H) ** 2, model.device,
                     "use fewer histories (the Gram path's memory is O(n²)) or downsized_spectra")
        k = model.vocab_size if cols is None else cols.shape[1]
        per_future = 8 * k * model.hidden_dim * 2 * max(1, len({len(h) for h in H}))
        Xt, M = model.gram_factors(H, F, cols, futures_per_block=max(1, memory_budget // per_future))
        G = (Xt @ M) @ Xt.T  # (n, n)
        return (G + G.T) / 2  # exactly symmetric, like the block sums
    acc = GramSum(len(H), getattr(model, "device", None), product) if into is None else into
    for _, block in _future_blocks(
        model, H, F, cols, path=path, batch_size=batch_size, memory_budget=memory_budget, progress=progress,
        reuse_states=reuse_states,
    ):
        acc.add(block)
    return acc if keep_sum else acc.leading(len(H), final=True)


def logit_spectrum(
    model: LanguageModel,
    histories,
    futures,
    *,
    rank: int | None = None,
    top_k: int | None = None,
    random_k: int | None = None,
    columns: torch.Tensor | None = None,
    generator=None,
    path: str = "auto",
    batch_size: int = 4096,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    product: str = "symmetric",
) -> Spectrum:
    """Singular values (and top-``rank`` left singular vectors) of L_{M,k}(H, F) via :func:`gram_matrix`.

    The other arguments are those of :func:`gram_matrix`. Memory O(n²), never O(n·m·k).

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(4, 8, 3, generator=0)
    >>> S = m.sample(30, generator=1).tolist()
    >>> spec = logit_spectrum(m, [s[:3] for s in S], [s[3:5] for s in S], top_k=2, rank=3)
    >>> spec.shape, spec.left_vectors.shape
    ((30, 60), torch.Size([30, 3]))
    >>> int((spec.singular_values > 1e-6 * spec.singular_values[0]).sum())   # rank d = 3
    3
    """
    H, F, cols, k, batch_size, memory_budget = _prepare(
        model, histories, futures, batch_size, memory_budget, top_k, random_k, columns, generator, path
    )
    rank = 0 if rank is None else check_int("rank", rank, minimum=0, maximum=len(H))
    acc = _accumulate(model, H, F, cols, path, batch_size, memory_budget, progress, _check_product(product),
                      keep_sum=True)
    if isinstance(acc, torch.Tensor):  # the factorised product's G
        return gram_spectrum(acc, rank=rank, shape=(len(H), len(F) * k))
    return acc.spectrum(rank, (len(H), len(F) * k))


def downsized_spectra(
    model: LanguageModel,
    histories,
    futures,
    *,
    factors: Sequence[int] = (1, 2, 4, 8, 16),
    normalize: bool = True,
    top_k: int | None = None,
    random_k: int | None = None,
    columns: torch.Tensor | None = None,
    generator=None,
    path: str = "auto",
    batch_size: int = 4096,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> dict[int, torch.Tensor]:
    """Singular values of L_{M,k}(H_i, F_i) for the downsized sets of paper A, Appendix A.1.2.

    H_i (F_i) holds the first ⌊|H|/√i⌋ (⌊|F|/√i⌋) elements of H (F), so L(H_i, F_i) has about 1/i of
    the entries. Because every F_i is a prefix of F, one pass over the futures serves all factors:
    the Gram sum is snapshotted when it reaches |F_i| futures and its leading (|H_i|, |H_i|) block is
    the Gram matrix of L(H_i, F_i). The columns kept per future are the same for every factor.

    Parameters
    ----------
    factors : sequence of int >= 1
        The i's (1 is the full matrix).
    normalize : bool
        Divide each spectrum by √(number of entries of its matrix), as the paper's figures do.

    Returns
    -------
    dict factor → (min(n_i, m_i·k),) float64 tensor of singular values, decreasing.

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(4, 8, 3, generator=0)
    >>> S = m.sample(32, generator=1).tolist()
    >>> sp = downsized_spectra(m, [s[:3] for s in S], [s[3:5] for s in S], factors=(1, 4), top_k=2)
    >>> [tuple(v.shape) for v in sp.values()]
    [(32,), (16,)]
    """
    H, F, cols, k, batch_size, memory_budget = _prepare(
        model, histories, futures, batch_size, memory_budget, top_k, random_k, columns, generator, path
    )
    factors = [check_int(f"factors[{j}]", f, minimum=1) for j, f in enumerate(factors)]
    sizes = {i: (int(len(H) / math.sqrt(i)), int(len(F) / math.sqrt(i))) for i in factors}
    acc = GramSum(len(H), getattr(model, "device", None), "symmetric")
    snapshots: dict[int, torch.Tensor] = {}
    for i, (n_i, m_i) in sizes.items():
        if m_i == 0:
            snapshots[i] = acc.leading(n_i)
    stops = [m_i for _, m_i in sizes.values()]
    for end, block in _future_blocks(
        model, H, F, cols, path=path, batch_size=batch_size, memory_budget=memory_budget,
        progress=progress, stops=stops,
    ):
        acc.add(block)  # (n, n)
        for i, (n_i, m_i) in sizes.items():
            if m_i == end:
                snapshots[i] = acc.leading(n_i)
    out = {}
    for i in factors:
        n_i, m_i = sizes[i]
        sv = gram_spectrum(snapshots[i], shape=(n_i, m_i * k)).singular_values
        if normalize and n_i * m_i > 0:
            sv = sv / math.sqrt(n_i * m_i * k)
        out[i] = sv
    return out
