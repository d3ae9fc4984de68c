"""The quantities of paper A, Lemma C.18 and Corollary C.19: when LinGen provably generates well.

Setting (Appendix C.4). A target history h_0, basis histories H = {h_1 … h_n}, coefficients v ∈ ℝⁿ
and a generation length k. Two distributions over futures f of length t < k:

* P_1 — t uniform in {0, …, k−1}, then f uniform in Σ^t (weight 1 / (k·V^t));
* P_2 — t uniform in {0, …, k−1}, then f ~ M's continuation of h_0 (weight Pr_M[f | h_0] / k).

With H_0 = {h_0} ∪ H (h_0 first) and L_f = L_M(H_0, {f}) the (n+1, V) block of mean-centred logits
(Definition 2.1) after h ∘ f,

    G_i = E_{f~P_i}[ L_f L_fᵀ ]                      (n+1, n+1)
    Δ   = E_{f~P_1} ‖L_M(h_0, f) − vᵀ L_M(H, f)‖²     (condition (6), with equality)
    γ(a) = λ_max(G_2 − a·G_1)₊                       (the least γ >= 0 with (5) at α = a)

and Lemma C.18 reads, for every a >= 0,

    KL(P_truth ‖ P_LinGen) <= 2k·√(a·Δ + γ(a)·(1 + ‖v‖²)),

where P_truth is M's law of the k tokens after h_0 and P_LinGen that of Algorithm 1 run with
(H, v) for k steps. :func:`lingen_bound` returns the minimum over a. Corollary C.19 flips the KL:
with C >= |L_M[z|h]| for every history h and token z,

    KL(P_LinGen ‖ P_truth) <= 2·(1 + k·(log V + 2C))·√k·(a·Δ + γ(a)·(1 + ‖v‖²))^{1/4}.

The constants are the printed ones: Lemma C.18's conclusion 2k·√(αΔ + γ(1 + ‖v‖²)) and Corollary
C.19's 2(1 + k(log|Σ| + 2C))·√k·(αΔ + γ(1 + ‖v‖²))^{0.25} (paper A, Appendix C.4; lines 976 and 998
of the full text in the project's seeds, 004_*.txt). P_1, P_2 draw t from {0, …, k−1} as printed.

Readings of the printed statement (paper A, Appendix C.4, Lemma C.18 and Corollary C.19):

* the lemma names (α, γ) as any pair with (5); for a fixed α the least admissible γ is
  λ_max(G_2 − αG_1), so minimising over α gives the lemma's best bound. α >= 0 is needed (the
  proof multiplies (6) by α). γ may be negative when G_2 ≺ αG_1, and the proof still goes through;
  :func:`lingen_bound` clips it at 0 by default (the slack reading) and ``clip_gamma=False``
  gives the stricter unclipped bound;
* the proof's u = (1, v) should be (1, −v) for the residual L(h_0) − vᵀL(H); ‖u‖² is the same;
* Fact C.21, used by the corollary, prints its hypothesis as −log p_i >= C; the proof of the
  corollary uses it as −log p_i <= C (a lower bound on every probability), which is what is
  checked here through the stated C.

Everything is exact enumeration (V^{k} sequences), in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from logitrank._tokens import as_token_list
from logitrank._validation import check_int, check_real
from logitrank.synth import LanguageModel, all_sequences

from ._lingen import fit_lingen_weights
from ._logit_matrix import logit_matrix

__all__ = [
    "FutureGrams",
    "LinGenBound",
    "corollary_c19_bound",
    "future_grams",
    "lingen_bound",
    "lingen_distributions",
    "max_abs_logit",
]

_MAX_SEQUENCES = 2**16


@dataclass(frozen=True)
class FutureGrams:
    """The exact second moments of Lemma C.18 and everything they are built from.

    Attributes
    ----------
    futures : list of token tuples, length m = Σ_{t<k} V^t
        Every future of length t < k, by length then lexicographically.
    logits : (n+1, m, V) float64 tensor
        L_M(H_0, F): row 0 is h_0, rows 1 … n are H.
    p1, p2 : (m,) float64 tensors
        The weights of P_1 and P_2 (each sums to 1).
    G1, G2 : (n+1, n+1) float64 tensors
        E_{P_1}[L_f L_fᵀ] and E_{P_2}[L_f L_fᵀ].
    k : int
    """

    futures: list
    logits: torch.Tensor
    p1: torch.Tensor
    p2: torch.Tensor
    G1: torch.Tensor
    G2: torch.Tensor
    k: int

    def residual(self, v: torch.Tensor, weights: torch.Tensor) -> float:
        """E_f ‖L_M(h_0, f) − vᵀL_M(H, f)‖² under ``weights`` (Δ with ``p1``, the left side of (7) with ``p2``)."""
        r = self.logits[0] - torch.einsum("n,nmv->mv", v, self.logits[1:])  # (m, V)
        return float((weights * (r**2).sum(1)).sum())

    def least_squares_v(self) -> torch.Tensor:
        """(n,) v minimising Δ: weighted least squares under P_1 (minimum-norm when H is dependent)."""
        s = self.p1.sqrt()[None, :, None]  # (1, m, 1)
        scaled = self.logits * s  # (n+1, m, V)
        return fit_lingen_weights(scaled[1:].reshape(scaled.shape[0] - 1, -1), scaled[0].reshape(-1))


def _check_setting(model: LanguageModel, h0, histories, k):
    V = model.vocab_size
    (target,) = as_token_list("h0", [h0], V)
    H = as_token_list("histories", histories, V)
    if not H:
        raise ValueError("histories must hold at least one basis history; got none")
    k = check_int("k", k, minimum=1)
    lengths = {len(h) for h in H} | {len(target)}
    if len(lengths) != 1:
        raise ValueError(
            f"h0 and histories must share one length (Fact C.4 is per length); got lengths {sorted(lengths)}"
        )
    (ell,) = lengths
    T = model.horizon
    if T is not None and ell + k > T:
        raise ValueError(f"k must be <= horizon − len(h0) = {T} − {ell} = {T - ell}; got k={k}")
    if V**k > _MAX_SEQUENCES:
        raise ValueError(f"k enumerates V**k = {V}**{k} = {V**k} sequences, more than {_MAX_SEQUENCES}; use a smaller k")
    return target, H, k


def future_grams(model: LanguageModel, h0, histories, k: int) -> FutureGrams:
    """Exact G_1, G_2 of Lemma C.18 (condition (5)) by enumerating every future of length < k.

    Parameters
    ----------
    model : LanguageModel
        M (any model following the protocol; an ISAN takes the factorised path of ``logit_matrix``).
    h0 : sequence of token ids
        The target history.
    histories : (n,) sequence of token sequences, all of len(h0)
        H.
    k : int >= 1
        The generation length; needs len(h0) + k <= T.

    Returns
    -------
    FutureGrams

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 4, 2, generator=0)
    >>> g = future_grams(m, (0,), [(1,), (2,)], 2)
    >>> g.G1.shape, len(g.futures), round(float(g.p2.sum()), 12)
    (torch.Size([3, 3]), 4, 1.0)
    """
    target, H, k = _check_setting(model, h0, histories, k)
    V = model.vocab_size
    futures = [tuple(f) for t in range(k) for f in all_sequences(V, t).tolist()]  # m = Σ_{t<k} V^t
    rows = [target] + H
    L = logit_matrix(model, rows, futures).to("cpu", torch.float64).reshape(len(rows), len(futures), V)  # (n+1, m, V)
    p1 = torch.cat([torch.full((V**t,), 1.0 / (k * V**t), dtype=torch.float64) for t in range(k)])  # (m,)
    cont = _continuation_weights(torch.log_softmax(L[0], dim=-1), V, k)  # per-length Pr_M[f | h0]
    p2 = torch.cat(cont[:k]) / k  # (m,)
    G1 = torch.einsum("f,afv,bfv->ab", p1, L, L)  # (n+1, n+1)
    G2 = torch.einsum("f,afv,bfv->ab", p2, L, L)
    return FutureGrams(futures, L, p1, p2, 0.5 * (G1 + G1.T), 0.5 * (G2 + G2.T), k)


def _continuation_weights(logp: torch.Tensor, V: int, k: int) -> list[torch.Tensor]:
    """Probabilities of every continuation of length 0 … k from next-token log-probs.

    ``logp`` is (m, V) with m = Σ_{t<k} V^t futures by length then lexicographically; the result's
    entry t is the (V^t,) vector Pr[f] for f ∈ Σ^t (children of f are f·V + z, lexicographic).
    """
    out = [torch.ones(1, dtype=torch.float64)]
    start = 0
    for t in range(k):
        block = logp[start : start + V**t].exp()  # (V^t, V)
        out.append((out[-1][:, None] * block).reshape(-1))  # (V^{t+1},)
        start += V**t
    return out


@dataclass(frozen=True)
class LinGenBound:
    """Lemma C.18 evaluated at one (M, h_0, H, v, k); see the module docstring.

    Attributes
    ----------
    delta : float
        Δ = E_{P_1}‖L(h_0, f) − vᵀL(H, f)‖².
    residual_p2 : float
        E_{P_2}‖L(h_0, f) − vᵀL(H, f)‖², the quantity (7) bounds by a·Δ + γ(a)(1 + ‖v‖²).
    v_norm_sq : float
        ‖v‖².
    alpha : float
        The minimising a >= 0.
    gamma : float
        γ(alpha).
    inner : float
        alpha·Δ + γ(alpha)·(1 + ‖v‖²), the minimised radicand.
    bound : float
        2k·√inner.
    k : int
    clip_gamma : bool
    """

    delta: float
    residual_p2: float
    v_norm_sq: float
    alpha: float
    gamma: float
    inner: float
    bound: float
    k: int
    clip_gamma: bool


def gamma_at(G1: torch.Tensor, G2: torch.Tensor, a: float, *, clip: bool = True) -> float:
    """γ(a) = λ_max(G_2 − a·G_1), clipped at 0 when ``clip`` (the least γ with (5) at α = a)."""
    lam = float(torch.linalg.eigvalsh(G2 - a * G1)[-1])
    return max(lam, 0.0) if clip else lam


def _minimise(phi, phi_grid, lo: float, hi: float, n_grid: int = 161, iters: int = 60) -> tuple[float, float]:
    """Minimise a unimodal φ(e^s) over s ∈ [lo, hi] (grid, then golden section), and compare a = 0.

    φ(a) = a·Δ + c·λ_max(G_2 − aG_1)(₊) is convex in a (λ_max of an affine matrix function is
    convex), so φ(e^s) is unimodal in s and golden section converges to its minimum.
    ``phi_grid`` evaluates φ on a (p,) tensor of a at once.
    """
    grid_t = torch.linspace(lo, hi, n_grid, dtype=torch.float64)
    grid, values = grid_t.tolist(), phi_grid(grid_t.exp()).tolist()
    i = min(range(n_grid), key=values.__getitem__)
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = phi(math.exp(c)), phi(math.exp(d))
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = phi(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = phi(math.exp(d))
    candidates = [(values[i], math.exp(grid[i])), (fc, math.exp(c)), (fd, math.exp(d)), (phi(0.0), 0.0)]
    best_value, best_a = min(candidates)
    return best_a, best_value


def lingen_bound(grams: FutureGrams, v, *, clip_gamma: bool = True,
                 alpha_range: tuple[float, float] = (1e-8, 1e12)) -> LinGenBound:
    """Lemma C.18's bound 2k·min_{a>=0} √(a·Δ + γ(a)·(1 + ‖v‖²)) for coefficients v.

    The lemma holds for any v (not only the least-squares one), so v is an argument.

    Parameters
    ----------
    grams : FutureGrams
        From :func:`future_grams`.
    v : (n,) tensor
        LinGen's coefficients.
    clip_gamma : bool
        γ(a) = λ_max(G_2 − aG_1)₊ (default, the issue's reading) or unclipped (stricter; see module).
    alpha_range : (float, float)
        Positive a searched on a log scale (a = 0 is always compared as well).

    Returns
    -------
    LinGenBound

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 5, 3, generator=0)
    >>> g = future_grams(m, (0, 1), [(1, 1), (2, 0), (0, 2)], 3)
    >>> b = lingen_bound(g, g.least_squares_v())
    >>> b.residual_p2 <= b.inner * (1 + 1e-9) + 1e-15      # inequality (7)
    True
    """
    v = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
    n = grams.logits.shape[0] - 1
    if v.numel() != n:
        raise ValueError(f"v must have n = {n} entries, one per basis history; got {v.numel()}")
    if not torch.isfinite(v).all():
        raise ValueError("v must be finite")
    lo, hi = (check_real("alpha_range[0]", alpha_range[0], low=0.0, low_open=True),
              check_real("alpha_range[1]", alpha_range[1], low=0.0, low_open=True))
    if lo >= hi:
        raise ValueError(f"alpha_range must be increasing; got {alpha_range}")
    delta = grams.residual(v, grams.p1)
    c = 1.0 + float(v @ v)

    def phi(a: float) -> float:
        return a * delta + gamma_at(grams.G1, grams.G2, a, clip=clip_gamma) * c

    def phi_grid(a: torch.Tensor) -> torch.Tensor:  # (p,) → (p,)
        lam = torch.linalg.eigvalsh(grams.G2[None] - a[:, None, None] * grams.G1[None])[:, -1]  # (p,)
        return a * delta + (lam.clamp_min(0.0) if clip_gamma else lam) * c

    alpha, inner = _minimise(phi, phi_grid, math.log(lo), math.log(hi))
    inner_pos = max(inner, 0.0)
    return LinGenBound(
        delta=delta, residual_p2=grams.residual(v, grams.p2), v_norm_sq=c - 1.0, alpha=alpha,
        gamma=gamma_at(grams.G1, grams.G2, alpha, clip=clip_gamma), inner=inner,
        bound=2 * grams.k * math.sqrt(inner_pos), k=grams.k, clip_gamma=clip_gamma,
    )


def lingen_distributions(grams: FutureGrams, v) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact laws over Σ^k of M's continuation of h_0 and of LinGen(H, v, k) (Algorithm 1).

    LinGen's step t draws z_t ~ softmax(vᵀ L_M(H, {z_{<t}})) (paper A, Algorithm 1, lines 5–6), so
    its law is the product of those softmaxes along the sequence; the truth multiplies
    softmax(L_M(h_0, {z_{<t}})).

    Returns
    -------
    (truth, lingen) : two (V^k,) float64 tensors in lexicographic order (as ``all_sequences``).
    """
    v = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
    V, k = grams.logits.shape[2], grams.k
    truth = _continuation_weights(torch.log_softmax(grams.logits[0], dim=-1), V, k)[k]
    mixed = torch.einsum("n,nmv->mv", v, grams.logits[1:])  # (m, V): LinGen's logits after each f
    lingen = _continuation_weights(torch.log_softmax(mixed, dim=-1), V, k)[k]
    return truth, lingen


def max_abs_logit(model: LanguageModel, max_length: int | None = None) -> float:
    """C = max |L_M[z | h]| over every history h of length <= ``max_length`` (default T − 1) and token z.

    Corollary C.19 assumes the bound for every h ∈ Σ*; for a model with horizon T that is every
    history of length <= T − 1, enumerated here.
    """
    V = model.vocab_size
    if max_length is None:
        if model.horizon is None:
            raise ValueError("max_length is required for a model with no horizon")
        max_length = model.horizon - 1
    max_length = check_int("max_length", max_length, minimum=0)
    if sum(V**t for t in range(max_length + 1)) > 16 * _MAX_SEQUENCES:
        raise ValueError(f"max_abs_logit would enumerate more than {16 * _MAX_SEQUENCES} histories; lower max_length")
    return max(float(model.logits(all_sequences(V, t)).abs().max()) for t in range(max_length + 1))


def corollary_c19_bound(inner: float, k: int, vocab_size: int, C: float) -> float:
    """Corollary C.19's bound 2·(1 + k(log V + 2C))·√k·inner^{1/4} on KL(P_LinGen ‖ P_truth).

    ``inner`` is a·Δ + γ(a)(1 + ‖v‖²) (:attr:`LinGenBound.inner`), C a bound on every |L_M[z|h]|.

    Examples
    --------
    >>> round(corollary_c19_bound(1e-4, 2, 3, 1.0), 6)   # 2·(1 + 2(log 3 + 2))·√2·0.1
    2.035683
    """
    k = check_int("k", k, minimum=1)
    V = check_int("vocab_size", vocab_size, minimum=1)
    C = check_real("C", C, low=0.0)
    inner = check_real("inner", inner)
    return 2.0 * (1.0 + k * (math.log(V) + 2.0 * C)) * math.sqrt(k) * max(inner, 0.0) ** 0.25
