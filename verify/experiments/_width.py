"""A model's hidden width read from outside: the rank of its next-token logit vectors over many prompts.

A network whose logits are l(y) = W h(y) (+ bias) with h(y) ∈ R^d has every logit vector in a
(d + 1)-dimensional affine image, so the matrix of n ≥ d logit rows has rank ≤ d (+1 with an output
bias); Carlini et al. (2024) and Finlayson et al. (2024) read d off the singular values of such a
matrix recovered through an API, on a subset of m > d token columns.

Two ± 1 effects, for the tiny GPT of :mod:`logitrank.verify.models` (``head`` has no bias;
``ln_f`` is a LayerNorm with gain γ and bias β):

* *LayerNorm (−1 or 0)*: LN(x) = γ ⊙ (x − μ)/σ + β. The normalised part (x − μ)/σ has zero mean, so
  it lives in a (d − 1)-dimensional subspace S; with β = 0 every logit vector would lie in W·γ⊙S and
  the rank would be d − 1. A learned β ∉ γ⊙S adds back one direction: rank d.
* *Centring over the columns (0)*: the rows returned here are centred over the m columns, which
  subtracts a linear function of h from each row (1 · a·h); that is (W_C − 1 aᵀ) h, still of rank ≤ d,
  and of rank exactly d unless some W_C v is a constant vector, which a generic W_C with m > d is not.

So the numerical rank should be d exactly for the tiny model (d − 1 with a zero LayerNorm bias).

The numerical rank is the number of singular values above ``tol``; by default tol is the largest
perturbation of a singular value that the recovery error can cause (Weyl: |σ̂_i − σ_i| ≤ ‖E‖₂ ≤
‖E‖_F ≤ √(n·m)·ε, ε = the per-entry bound), raised to 1e-6·σ₁ for a float32 network's own rounding.
The gap reported is σ_r / σ_{r+1} at the chosen rank r.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from logitrank._tokens import as_token_list
from logitrank._tokens import group_by_length as _group_by_length
from logitrank._validation import check_model, check_real

__all__ = ["HiddenWidth", "hidden_width"]


@dataclass(frozen=True)
class HiddenWidth:
    """The numerical rank of an (n prompts × m columns) logit matrix read through an API.

    Attributes
    ----------
    rank : int
        Singular values above ``tol``.
    gap : float
        σ_rank / σ_{rank+1} (inf when rank = min(n, m) or σ_{rank+1} = 0).
    largest_gap_rank : int
        The r maximising σ_r / σ_{r+1} over r < min(n, m − 1) (a check on ``rank`` that needs no
        tolerance; σ_m is zero by construction, the rows being centred over the m columns).
    singular_values : (min(n, m),) ndarray
    tol : float
        Absolute threshold used.
    n_prompts, n_columns : int
    calls, tokens, cached : int
        API cost of this measurement (requests answered by the server, billed tokens, cache hits).
    seconds : float
        Wall time.
    bound : float
        Per-entry recovery error bound of the model.
    """

    rank: int
    gap: float
    largest_gap_rank: int
    singular_values: np.ndarray
    tol: float
    n_prompts: int
    n_columns: int
    calls: int
    tokens: int
    cached: int
    seconds: float
    bound: float


def hidden_width(model, prompts, columns, *, tol: float | None = None) -> HiddenWidth:
    """Rank and singular-value gap of the next-token logits of ``prompts`` on ``columns`` (module docstring).

    Parameters
    ----------
    model : APIModel, or any LanguageModel
        With ``column_logits`` (the API model: only the m columns are recovered) or else ``logits``
        (all V, then restricted to the columns and centred over them).
    prompts : (n,) sequence of token sequences
        n should exceed the width looked for; lengths may differ.
    columns : (m,) sequence of distinct token ids
        m should exceed the width looked for.
    tol : float, optional
        Absolute singular-value threshold; default max(√(n·m)·bound, 1e-6·σ₁) with ``bound`` the
        model's per-entry error (``model.error_bound()``; 0 for a local model).

    Returns
    -------
    HiddenWidth

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(6, 4, 3, generator=0)
    >>> hw = hidden_width(m, [(a, b) for a in range(6) for b in range(6)], range(6))
    >>> hw.rank <= 3
    True
    """
    check_model("model", model)
    V = model.vocab_size
    P = as_token_list("prompts", prompts, V)
    cols = [int(c) for c in columns]
    if not cols or len(set(cols)) != len(cols) or min(cols) < 0 or max(cols) >= V:
        raise ValueError(f"columns must be distinct token ids in [0, {V}); got {cols[:8]}{'…' if len(cols) > 8 else ''}")
    if tol is not None:
        tol = check_real("tol", tol, low=0.0)
    bound = float(model.error_bound()) if callable(getattr(model, "error_bound", None)) else 0.0
    cost = getattr(model, "cost", None)
    before = cost() if callable(cost) else {}
    start = time.perf_counter()
    rows = np.empty((len(P), len(cols)))
    for length, idx in sorted(_group_by_length(P).items()):
        batch = torch.tensor([P[i] for i in idx], dtype=torch.long).reshape(len(idx), length)  # (b, length)
        if callable(getattr(model, "column_logits", None)):
            block = model.column_logits(batch, cols)  # (b, m)
        else:
            full = model.logits(batch).to(torch.float64)  # (b, V)
            block = full[:, cols] - full[:, cols].mean(dim=1, keepdim=True)
        rows[idx] = block.detach().to("cpu", torch.float64).numpy()
    seconds = time.perf_counter() - start
    sv = np.linalg.svd(rows, compute_uv=False)
    top = float(sv[0]) if sv.size else 0.0
    if tol is None:
        tol = max(np.sqrt(rows.size) * bound, 1e-6 * top)
    rank = int((sv > tol).sum())
    gap = float(sv[rank - 1] / sv[rank]) if 0 < rank < sv.size and sv[rank] > 0 else float("inf")
    # rows centred over the m columns sum to zero, so σ_m = 0 by construction: gaps up to min(n, m − 1) only
    usable = sv[: min(len(P), len(cols) - 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = usable[:-1] / usable[1:]  # σ_r / σ_{r+1}, r = 1 … min(n, m − 1) − 1
    ratios = np.where(usable[:-1] > 0, ratios, 0.0)
    largest = int(np.argmax(ratios)) + 1 if ratios.size else int(usable.size)
    after = cost() if callable(cost) else {}
    return HiddenWidth(rank=rank, gap=gap, largest_gap_rank=largest, singular_values=sv, tol=float(tol),
                       n_prompts=len(P), n_columns=len(cols),
                       calls=after.get("calls", 0) - before.get("calls", 0),
                       tokens=after.get("tokens", 0) - before.get("tokens", 0),
                       cached=after.get("cached", 0) - before.get("cached", 0), seconds=seconds, bound=bound)
