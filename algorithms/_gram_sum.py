"""The running Gram sum G = Σ b bᵀ over blocks of a logit matrix's columns (the accumulator of
:mod:`._gram`): one triangle in float64, mirrored exactly when read."""

from __future__ import annotations

import torch

from logitrank._validation import check_memory

from ._gram_spectrum import Spectrum, _spectrum, gram_spectrum

__all__ = ["GramSum", "RowPermuted", "add_lower_panels_", "mirror_lower_"]


class GramSum:
    """G = Σ blocks·blocksᵀ in float64 on the blocks' device.

    ``product="symmetric"`` forms only the lower triangle — half the FLOPs: BLAS ``dsyrk`` for
    float64 on the CPU (OpenBLAS through scipy: 0.88–0.92 of torch's float64 matmul FLOP rate here,
    level with MKL's own dsyrk and with MKL ``addmm`` on block-triangular panels), otherwise
    ``addmm`` on 8 row panels of the lower triangle (9/16 of the FLOPs of the full product) — and
    mirrors it when read.
    ``product="full"`` is the plain ``addmm`` of every entry (the route before issue 14), read as
    (G + Gᵀ)/2. Both are exact sums of the same products; they differ only in rounding (tests
    compare them).

    What is exact and what is rounding: whatever the route, the G returned by :meth:`leading` is
    *exactly* symmetric on every BLAS and CPU — the triangle routes copy one triangle onto the
    other, the full route averages the two halves (IEEE addition commutes, so entry (i, j) and
    entry (j, i) are the same float). Its entries equal L Lᵀ only up to float64 summation
    rounding (≈ eps·c·max|b|² per block of c columns), which depends on the BLAS kernel, the
    thread count and the block sizes; no test may assume more.
    """

    PANELS = 8

    def __init__(self, n: int, device, product: str):
        check_memory(f"the ({n}, {n}) float64 Gram matrix", 2 * 8 * n * n, device,
                     "use fewer histories (the Gram path's memory is O(n²)) or downsized_spectra")
        self.G = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.product = product
        self.inv = None  # row i of L is row inv[i] of the accumulated blocks

    def add(self, block) -> None:
        if isinstance(block, RowPermuted):  # rows in another order: accumulate there, map back when read
            if self.inv is not None and not torch.equal(self.inv, block.inv):
                raise RuntimeError("internal: blocks of one Gram sum arrived in two different row orders")
            self.inv = block.inv
            block = block.block
        b = block.to(torch.float64)  # (n, c)
        if self.product == "full":
            self.G.addmm_(b, b.T)  # (n, n)
        elif b.device.type == "cpu" and b.shape[0] and b.shape[1]:
            from scipy.linalg import blas

            # C-ordered G and b are Fortran Gᵀ and bᵀ: dsyrk(trans=1) adds b bᵀ to G's lower triangle
            b = b.contiguous()
            out = blas.dsyrk(1.0, b.numpy().T, beta=1.0, c=self.G.numpy().T, trans=1, lower=0, overwrite_c=1)
            if torch.from_numpy(out.T).data_ptr() != self.G.data_ptr():  # pragma: no cover - scipy copied
                self.G.copy_(torch.from_numpy(out.T))
        else:
            add_lower_panels_(self.G, b, self.PANELS)

    def leading(self, n_i: int, *, final: bool = False) -> torch.Tensor:
        """The symmetric (n_i, n_i) leading block of G, a new tensor (``final``: G itself may be
        overwritten, saving n² temporaries at the end of the sum)."""
        G = self.G
        if self.product == "full":
            # every entry was summed, but whether BLAS wrote bitwise-equal halves depends on its
            # kernel (MKL on AVX-512 does not): (G + Gᵀ)/2 is exactly symmetric on any BLAS, since
            # a + b == b + a in IEEE arithmetic, and differs from either half by rounding only
            G = (G + G.T) / 2  # a new tensor: the running sum is untouched
            if final:
                self.G = None
        else:
            if not final:
                G = G.clone() if self.inv is not None else G[:n_i, :n_i].clone()
            mirror_lower_(G)
        if self.inv is not None:
            idx = self.inv[:n_i].to(G.device)
            rows = G.index_select(0, idx)
            if final:
                del G
                self.G = None
            return rows.index_select(1, idx)
        if n_i == G.shape[0] and (final or G is not self.G):
            return G
        return G[:n_i, :n_i].clone()  # never a view of the running sum nor of a larger temporary

    def spectrum(self, rank: int, shape: tuple[int, int]) -> Spectrum:
        """The final sum's spectrum, as :func:`gram_spectrum` of :meth:`leading` would give, read
        straight off the accumulated lower triangle (it consumes the sum).

        The triangle is what ``eigh``/``eigvalsh`` read (``UPLO="L"``), so neither the mirror nor the
        symmetrisation (both exact for this sum) is formed; the rows stay in accumulation order,
        which changes no eigenvalue (G and PGPᵀ share them) and only permutes eigenvector rows,
        mapped back here. Equal to the other route up to LAPACK's rounding.
        """
        if self.product == "full":  # every entry summed: symmetrise as gram_spectrum does
            return gram_spectrum(self.leading(self.G.shape[0], final=True), rank=rank, shape=shape)
        G, self.G = self.G, None
        if rank:
            evals, evecs = torch.linalg.eigh(G, UPLO="L")  # ascending
            del G
            evals, evecs = evals.flip(0), evecs[:, -rank:].flip(1)  # (n,), (n, rank) descending
            if self.inv is not None:
                evecs = evecs.index_select(0, self.inv.to(evecs.device))  # rows in L's order
        else:
            evals = torch.linalg.eigvalsh(G, UPLO="L").flip(0)
        return _spectrum(evals, evecs if rank else None, shape)


def add_lower_panels_(G: torch.Tensor, b: torch.Tensor, panels: int) -> torch.Tensor:
    """G += b bᵀ on and below the diagonal (some entries above it too), in place: (n, n), (n, c).

    Row panel i gets b[panel i] · b[: end of panel i]ᵀ, one ``addmm`` each, so ``panels`` = p costs
    (p + 1)/(2p) of the full product's FLOPs. The entries above the diagonal that the diagonal
    tiles also receive are never read (the sum is read from its lower triangle).
    """
    n = b.shape[0]
    step = max(1, -(-n // panels))
    for i in range(0, n, step):
        e = min(i + step, n)
        G[i:e, :e].addmm_(b[i:e], b[:e].T)  # (e − i, e)
    return G


def mirror_lower_(G: torch.Tensor, tile: int = 512) -> torch.Tensor:
    """Copy the strict lower triangle of the (n, n) ``G`` onto its upper triangle, in place.

    Tile by tile, so each transposed copy stays in cache: 0.25 s at n = 10⁴ on one core here, where
    ``G += torch.tril(G, -1).T`` took 2.7 s. The result is exactly symmetric (copies, no arithmetic).
    """
    n = G.shape[0]
    for i in range(0, n, tile):
        D = G[i : i + tile, i : i + tile]
        D.copy_(torch.tril(D) + torch.tril(D, -1).T)  # the diagonal tile: adds exact zeros only
        for j in range(i + tile, n, tile):
            G[i : i + tile, j : j + tile].copy_(G[j : j + tile, i : i + tile].T)
    return G


class RowPermuted:
    """A block of L with its rows in another order: row r of L is ``block[inv[r]]``."""

    def __init__(self, block: torch.Tensor, inv: torch.Tensor):
        self.block, self.inv = block, inv
        self.shape = block.shape

    def to(self, dtype):
        return self.block[self.inv].to(dtype)  # (n, c) in L's row order
