"""A Gram matrix of a logit matrix summed over slices of its futures: resumable, mergeable (paper A, §3.1).

G = L(H, F) L(H, F)ᵀ = Σ over slices F_j of F of L(H, F_j) L(H, F_j)ᵀ (Fact C.20's sum), so a spectrum
that does not fit one run can be built slice by slice — across runs (checkpoint :meth:`GramAccumulator.state`
between slices) or across processes (each sums its own slices; :meth:`GramAccumulator.merge` adds the
partial sums). :func:`logitrank.algorithms.logit_spectrum` is the one-call version.
"""

from __future__ import annotations

import torch

from logitrank._validation import check_model
from logitrank.synth import LanguageModel

from ._gram import _accumulate, _check_product, _prepare
from ._gram_spectrum import Spectrum, gram_spectrum
from ._gram_sum import GramSum
from ._logit_matrix import DEFAULT_MEMORY_BUDGET

__all__ = ["GramAccumulator"]


class GramAccumulator:
    """Running G = Σ_j L(H, F_j) L(H, F_j)ᵀ over slices F_j of the futures, in float64.

    Parameters
    ----------
    model : LanguageModel
    histories : sequence of n token sequences
        H, fixed for the accumulator's life.
    product : "symmetric" | "full"
        How each block's contribution is formed (see :func:`logitrank.algorithms.gram_matrix`).
    path, batch_size, memory_budget :
        As for :func:`logitrank.algorithms.logit_matrix`.

    Attributes
    ----------
    n : int
        |H|.
    columns : int
        Columns of L added so far (Σ_j |F_j|·k_j): the second dimension of L's shape.
    slices : int
        Calls of :meth:`add` (and merged accumulators' slices).

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> from logitrank.algorithms import gram_matrix
    >>> m = random_isan(4, 6, 3, generator=0)
    >>> H, F = [(0,), (1,), (2, 3)], [(), (1,), (2, 3), (0,)]
    >>> acc = GramAccumulator(m, H)
    >>> acc.add(F[:2], top_k=2).add(F[2:], top_k=2).columns
    8
    >>> bool(torch.allclose(acc.gram, gram_matrix(m, H, F, top_k=2), rtol=0, atol=1e-12))
    True
    """

    def __init__(self, model: LanguageModel, histories, *, product: str = "symmetric", path: str = "auto",
                 batch_size: int = 4096, memory_budget: int = DEFAULT_MEMORY_BUDGET):
        check_model("model", model)
        if _check_product(product) == "factorised":
            raise ValueError("product='factorised' forms G in one piece and cannot be accumulated; "
                             "use 'symmetric' or 'full'")
        self.model, self.product, self.path = model, product, path
        H, _, _, _, self.batch_size, self.memory_budget = _prepare(
            model, histories, [], batch_size, memory_budget, None, None, None, None, path)
        self.histories = H
        self._sum = GramSum(len(H), getattr(model, "device", None), product)
        self.columns = 0
        self.slices = 0

    @property
    def n(self) -> int:
        return len(self.histories)

    def add(self, futures, *, top_k: int | None = None, random_k: int | None = None,
            columns: torch.Tensor | None = None, generator=None, progress: bool = False) -> GramAccumulator:
        """Add L(H, futures) L(H, futures)ᵀ; the column choice is that of :func:`logit_matrix`. → self."""
        self._check_alive()
        H, F, cols, k, _, _ = _prepare(self.model, self.histories, futures, self.batch_size, self.memory_budget,
                                       top_k, random_k, columns, generator, self.path)
        _accumulate(self.model, H, F, cols, self.path, self.batch_size, self.memory_budget, progress, self.product,
                    keep_sum=True, into=self._sum)
        self.columns += len(F) * k
        self.slices += 1
        return self

    def merge(self, other: GramAccumulator) -> GramAccumulator:
        """Add another accumulator's sum over the same histories (e.g. a worker's slices). → self."""
        if not isinstance(other, GramAccumulator):
            raise TypeError(f"other must be a GramAccumulator; got {type(other).__name__}")
        self._check_alive()
        other._check_alive()
        if other.histories != self.histories:
            raise ValueError("other must accumulate the same histories, in the same order")
        if other.product != self.product:
            raise ValueError(f"other must use the same product; got {other.product!r}, this one {self.product!r}")
        a, b = self._sum, other._sum
        if a.inv is None and b.inv is not None:
            a.inv = b.inv.clone() if self.columns == 0 else a.inv  # a sum of no columns takes the other's row order
        if (a.inv is None) != (b.inv is None) or (a.inv is not None and not torch.equal(a.inv, b.inv)):
            # rows in two different orders: bring the other's sum into this one's order
            G_other = other.gram
            if a.inv is not None:
                perm = torch.empty_like(a.inv)
                perm[a.inv] = torch.arange(len(a.inv), device=a.inv.device)
                G_other = G_other.index_select(0, perm.to(G_other.device)).index_select(1, perm.to(G_other.device))
            a.G += G_other.to(a.G.device)
        else:
            a.G += b.G.to(a.G.device)
        self.columns += other.columns
        self.slices += other.slices
        return self

    @property
    def gram(self) -> torch.Tensor:
        """G so far: (n, n) float64, exactly symmetric, rows in the order of ``histories`` (a new tensor)."""
        self._check_alive()
        return self._sum.leading(self.n)

    def spectrum(self, rank: int | None = None, *, consume: bool = False) -> Spectrum:
        """Singular values of L(H, F added so far), and the top-``rank`` left vectors (shape (n, columns)).

        ``consume=True`` reads the eigenvalues straight off the accumulated triangle without forming the
        symmetric copy (n² less memory and time at n = 10⁴; equal to LAPACK rounding) and ends the
        accumulator: any later use raises.
        """
        self._check_alive()
        if not consume:
            return gram_spectrum(self.gram, rank=rank, shape=(self.n, max(self.columns, 0)))
        out = self._sum.spectrum(0 if rank is None else rank, (self.n, max(self.columns, 0)))
        self._sum = None
        return out

    def _check_alive(self) -> None:
        if self._sum is None:
            raise RuntimeError("this GramAccumulator was consumed by spectrum(consume=True); build a new one")

    def state(self) -> dict:
        """What a checkpoint needs: the raw sum (one triangle filled for "symmetric"), its row order, and
        the counters. :meth:`from_state` restores it; the tensors are not copied."""
        inv = self._sum.inv
        return {"G": self._sum.G, "inv": None if inv is None else inv.tolist(), "columns": self.columns,
                "slices": self.slices, "product": self.product, "n": self.n}

    @classmethod
    def from_state(cls, model: LanguageModel, histories, state: dict, **settings) -> GramAccumulator:
        """An accumulator over ``histories`` continuing the sum in ``state`` (from :meth:`state`)."""
        acc = cls(model, histories, product=state.get("product", "symmetric"), **settings)
        G = state["G"]
        if not isinstance(G, torch.Tensor) or tuple(G.shape) != (acc.n, acc.n):
            got = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
            raise ValueError(f"state['G'] must be an ({acc.n}, {acc.n}) tensor for these histories; got {got}")
        acc._sum.G = G.to(torch.float64)
        acc._sum.inv = None if state.get("inv") is None else torch.tensor(state["inv"], dtype=torch.long)
        acc.columns, acc.slices = int(state.get("columns", 0)), int(state.get("slices", 0))
        return acc
