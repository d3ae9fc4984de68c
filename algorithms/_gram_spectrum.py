"""Singular values from a Gram matrix, and paper A's randomized route (Appendix A.1.3).

:class:`Spectrum` is what every spectrum function returns; :func:`gram_spectrum` reads it off a Gram
matrix G = L Lᵀ (σ_i = √λ_i(G)); :func:`lowrank_spectrum` is ``torch.svd_lowrank`` on the
materialised L, the route paper A used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from logitrank._validation import as_generator, check_int

__all__ = ["Spectrum", "gram_spectrum", "lowrank_spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """Singular values (and optionally leading left singular vectors) of a logit matrix.

    Attributes
    ----------
    singular_values : (min(n, M),) float64 tensor
        In decreasing order (M = m·k columns).
    left_vectors : (n, r) float64 tensor or None
        The top-r left singular vectors, each with its largest-magnitude entry positive.
    shape : (int, int)
        (n, M), the shape of the matrix.
    """

    singular_values: torch.Tensor
    left_vectors: torch.Tensor | None
    shape: tuple[int, int]


def gram_spectrum(gram: torch.Tensor, *, rank: int | None = None, shape: tuple[int, int] | None = None) -> Spectrum:
    """Singular values σ_i = √λ_i(G) (negative rounding clipped to 0) and top-``rank`` left vectors.

    Parameters
    ----------
    gram : (n, n) symmetric tensor
        L Lᵀ, e.g. from :func:`gram_matrix`; used in float64.
    rank : int, optional
        How many left singular vectors to return (default none).
    shape : (n, M), optional
        The shape of L: when M < n only M singular values are returned.

    Examples
    --------
    >>> import torch
    >>> L = torch.tensor([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]], dtype=torch.float64)
    >>> gram_spectrum(L @ L.T, rank=1).singular_values.tolist()
    [4.0, 3.0]
    """
    if not isinstance(gram, torch.Tensor) or gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        got = tuple(gram.shape) if isinstance(gram, torch.Tensor) else type(gram).__name__
        raise ValueError(f"gram must be a square (n, n) tensor; got {got}")
    n = gram.shape[0]
    shape = (n, n) if shape is None else (int(shape[0]), int(shape[1]))
    if shape[0] != n:
        raise ValueError(f"shape[0] must equal the Gram size n={n}; got shape {shape}")
    rank = 0 if rank is None else check_int("rank", rank, minimum=0, maximum=n)
    G = gram.to(torch.float64)
    if rank:
        evals, evecs = torch.linalg.eigh((G + G.T) / 2)  # ascending
        evals, evecs = evals.flip(0), evecs.flip(1)  # descending
    else:  # values only: ~3× cheaper than with vectors at n = 10⁴
        evals = torch.linalg.eigvalsh((G + G.T) / 2).flip(0)
    return _spectrum(evals, evecs[:, :rank] if rank else None, shape)


def _spectrum(evals: torch.Tensor, evecs: torch.Tensor | None, shape: tuple[int, int]) -> Spectrum:
    """Eigenvalues (n,) in decreasing order and top eigenvectors (n, r) or None → Spectrum."""
    sv = evals.clamp_min(0).sqrt()[: min(shape)]
    return Spectrum(sv, None if evecs is None else _canonical_signs(evecs), shape)


def _canonical_signs(U: torch.Tensor) -> torch.Tensor:
    """Flip each column so its largest-magnitude entry is positive (reruns give identical vectors)."""
    if U.numel() == 0:
        return U
    idx = U.abs().argmax(dim=0)  # (r,)
    signs = torch.sign(U[idx, torch.arange(U.shape[1], device=U.device)])
    signs[signs == 0] = 1
    return U * signs


def lowrank_spectrum(L: torch.Tensor, q: int, *, niter: int = 2, generator) -> Spectrum:
    """The randomized path of paper A (Appendix A.1.3): ``torch.svd_lowrank(L, q, niter)``.

    ``torch.svd_lowrank`` draws its test matrix from torch's global generator; here it runs inside
    ``torch.random.fork_rng`` seeded from ``generator``, so the call is reproducible and leaves the
    global state untouched.

    Parameters
    ----------
    L : (n, M) tensor
        The materialised matrix.
    q : int
        Rank of the sketch (1 <= q <= min(n, M)); the top singular values are accurate only well
        below q.
    niter : int
        Subspace iterations (torch's default 2).
    generator : torch.Generator or int

    Returns
    -------
    Spectrum with q singular values and q left vectors (float64).

    Examples
    --------
    >>> import torch
    >>> L = torch.diag(torch.tensor([5.0, 3.0, 1.0], dtype=torch.float64))
    >>> [round(s, 6) for s in lowrank_spectrum(L, 3, generator=0).singular_values.tolist()]
    [5.0, 3.0, 1.0]
    """
    if not isinstance(L, torch.Tensor) or L.ndim != 2 or not L.dtype.is_floating_point:
        raise ValueError(f"L must be a floating (n, M) tensor; got {type(L).__name__} {tuple(getattr(L, 'shape', ()))}")
    q = check_int("q", q, minimum=1, maximum=min(L.shape))
    niter = check_int("niter", niter, minimum=0)
    gen = as_generator(generator, torch.device("cpu"))
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    devices = [L.device] if L.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        U, S, _ = torch.svd_lowrank(L, q=q, niter=niter)
    return Spectrum(S.to(torch.float64), _canonical_signs(U.to(torch.float64)), tuple(L.shape))
