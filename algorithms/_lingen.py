"""LinGen: generating a continuation of a target history from other histories' logits (paper A, §3.3).

If the target's row of the extended logit matrix is (close to) a linear combination vᵀ L_M(H, F)
of the rows of a set of histories H, the same combination of the histories' next-token logits after
any generated prefix z_{1:t−1} should approximate the target's: Algorithm 1 samples

    z_t ~ softmax( Σ_{h ∈ H} v_h · L_M[· | h ∘ z_{1:t−1}] ),

querying the model only at h ∘ z, never at h_targ ∘ z. This module holds

* :func:`fit_lingen_weights` — the regression of §3.3 that finds v from L_M(H, F) and
  L_M({h_targ}, F) (least squares, optionally ridge);
* :func:`lingen` — Algorithm 1, for many generations at once;
* :func:`position_kl` — the per-position KL(LinGen ‖ M) of Figure 5;
* :class:`ContextWindow` — the "5-token context" baseline of §3.3 as a wrapper model.

The other baselines of §3.3 are LinGen itself with other inputs: *single-token LinGen* fits v on
the empty future alone, L_M(H, {∅}); sampling from a model M′ (a short-context wrapper or an
earlier checkpoint) given h_targ is ``lingen(M′, [h_targ], [[1.0]], m)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from logitrank._validation import as_generator, check_int, check_model, check_real
from logitrank.synth import LanguageModel, LogitModel

from ._logit_matrix import as_token_list, logit_matrix

__all__ = ["ContextWindow", "LinGenResult", "fit_lingen_weights", "lingen", "position_kl"]


def _as_matrix(name: str, x, ndim: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating tensor; got dtype {x.dtype}")
    if x.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions; got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite; got {int((~torch.isfinite(x)).sum())} non-finite entries")
    return x.detach().to("cpu", torch.float64)


def fit_lingen_weights(L_histories: torch.Tensor, L_target: torch.Tensor, *, ridge: float = 0.0,
                       rcond: float | None = None) -> torch.Tensor:
    """The coefficients v of paper A, §3.3: L_M({h_targ}, F) ≈ vᵀ L_M(H, F), by least squares.

    Minimises ‖L_target − vᵀ L_histories‖² + ridge·‖v‖² (one problem per target row). With
    ``ridge = 0`` the minimum-norm solution is returned (SVD-based ``gelsd``; singular values below
    ``rcond``·σ_max count as zero); with ``ridge > 0`` the problem is solved as the augmented
    least-squares system [Lᵀ; √ridge·I] v = [l; 0].

    Parameters
    ----------
    L_histories : (n, M) tensor
        Rows L_M(h, F) for h ∈ H, e.g. ``logit_matrix(model, H, F, top_k=50)``.
    L_target : (M,) or (g, M) tensor
        The target row(s) L_M(h_targ, F) with the same columns.
    ridge : float >= 0
    rcond : float, optional
        Relative cut-off for small singular values (default: machine precision × max(n, M)).

    Returns
    -------
    (n,) or (g, n) float64 tensor
        v, one row per target.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> L = torch.randn(3, 20, generator=g, dtype=torch.float64)
    >>> v = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    >>> torch.allclose(fit_lingen_weights(L, v @ L), v)   # a planted combination is recovered
    True
    """
    L = _as_matrix("L_histories", L_histories, (2,))
    y = _as_matrix("L_target", L_target, (1, 2))
    ridge = check_real("ridge", ridge, low=0.0)
    single = y.ndim == 1
    Y = y.reshape(1, -1) if single else y  # (g, M)
    if Y.shape[1] != L.shape[1]:
        raise ValueError(
            f"L_target must have M = {L.shape[1]} columns like L_histories (the same futures and tokens); "
            f"got shape {tuple(y.shape)}"
        )
    n = L.shape[0]
    A, B = L.T, Y.T  # (M, n), (M, g)
    if ridge > 0:
        A = torch.cat([A, ridge**0.5 * torch.eye(n, dtype=torch.float64)])  # (M+n, n)
        B = torch.cat([B, torch.zeros(n, B.shape[1], dtype=torch.float64)])  # (M+n, g)
    v = torch.linalg.lstsq(A, B, rcond=rcond, driver="gelsd").solution.T  # (g, n)
    return v[0] if single else v


@dataclass(frozen=True)
class LinGenResult:
    """The output of :func:`lingen`.

    Attributes
    ----------
    tokens : (G, m) LongTensor
        Generated tokens z; generation g used weights row ``rows[g]``.
    logits : (G, m, V) float64 tensor
        LinGen's logits at each step, vᵀ L_M(H, {z_{1:t−1}}) (mean-centred, as a combination of
        mean-centred rows).
    rows : (G,) LongTensor
        Which row of v produced each generation (rows repeat ``n_samples`` times in order).
    """

    tokens: torch.Tensor
    logits: torch.Tensor
    rows: torch.Tensor


def lingen(model: LanguageModel, histories, v, n_tokens: int, *, n_samples: int = 1, generator) -> LinGenResult:
    """Algorithm 1 of paper A (LinGen), for every row of v and ``n_samples`` generations each.

    Steps (numbered as in Algorithm 1, lines 4–7), run for all G = g·n_samples generations together:

    4. for t = 1 … m:
    5. compute L_M(H, {z_{1:t−1}}) and logits_t = vᵀ L_M(H, {z_{1:t−1}});
    6. sample z_t ~ softmax(logits_t).

    Step 5 has two implementations with the same result. A model with a ``rollout`` method (the
    cached networks of :mod:`logitrank.verify.models`) keeps every history's key/value cache and appends one
    token per step (n·G positions per step); any other model gets one :func:`logit_matrix` call per
    step with the distinct current prefixes as futures. Step 6 draws by inverse CDF from uniforms
    drawn up front (G × m of them), so the samples do not depend on how generations are batched.

    Parameters
    ----------
    model : LanguageModel
    histories : (n,) sequence of token sequences
        H.
    v : (n,) or (g, n) tensor
        Coefficients, e.g. from :func:`fit_lingen_weights`.
    n_tokens : int
        m, the number of tokens to generate.
    n_samples : int
        Generations per row of v.
    generator : torch.Generator or int
        Randomness of the sampling (on the CPU).

    Returns
    -------
    LinGenResult

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 5, 2, generator=0)
    >>> out = lingen(m, [(0,), (1,)], torch.tensor([0.3, 0.7]), 3, n_samples=2, generator=0)
    >>> out.tokens.shape, out.logits.shape
    (torch.Size([2, 3]), torch.Size([2, 3, 3]))
    """
    check_model("model", model)
    V = model.vocab_size
    H = as_token_list("histories", histories, V)
    if not H:
        raise ValueError("histories must hold at least one history; got none")
    m = check_int("n_tokens", n_tokens, minimum=1)
    T = getattr(model, "horizon", None)
    if T is not None and max(map(len, H)) + m > T:
        raise ValueError(f"n_tokens must be <= horizon − (longest history) = {T} − {max(map(len, H))} = "
                         f"{T - max(map(len, H))} so that every generated token has a next-token distribution; "
                         f"got n_tokens={m}")
    n_samples = check_int("n_samples", n_samples, minimum=1)
    W = _as_matrix("v", v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64), (1, 2))
    W = W.reshape(1, -1) if W.ndim == 1 else W  # (g, n)
    if W.shape[1] != len(H):
        raise ValueError(f"v must have n = {len(H)} entries per row, one per history; got shape {tuple(W.shape)}")
    gen = as_generator(generator, torch.device("cpu"))
    rows = torch.arange(W.shape[0]).repeat_interleave(n_samples)  # (G,)
    G = len(rows)
    uniforms = torch.rand(G, m, generator=gen, dtype=torch.float64)  # (G, m)
    tokens = torch.zeros(G, m, dtype=torch.long)
    logits = torch.empty(G, m, V, dtype=torch.float64)

    def choose(t: int, L: torch.Tensor, streams: torch.Tensor) -> torch.Tensor:
        """Steps 5–6 for generations ``streams`` given L = L_M(H, {z_{<t}}) as (n, g, V)."""
        step = torch.einsum("gn,ngv->gv", W[rows[streams]], L.to("cpu", torch.float64))  # (g, V)
        if not torch.isfinite(step).all():
            raise ValueError(f"v is too large: the combined logits Σ_i v_i·L(h_i, ·) overflow float64 at generated "
                             f"token {t} (max |v| = {float(W.abs().max()):.3g}); scale v down")
        logits[streams, t] = step
        cdf = torch.softmax(step, dim=1).cumsum(dim=1)  # (g, V)
        z = torch.searchsorted(cdf, uniforms[streams, t, None] * cdf[:, -1:]).squeeze(1).clamp_max(V - 1)  # (g,)
        tokens[streams, t] = z
        return z

    rollout = getattr(model, "rollout", None)
    if callable(rollout):
        rollout(H, G, m, choose)
    else:
        for t in range(m):
            prefixes = [tuple(r) for r in tokens[:, :t].tolist()]
            distinct = list(dict.fromkeys(prefixes))
            where = {p: i for i, p in enumerate(distinct)}
            L = logit_matrix(model, H, distinct).reshape(len(H), len(distinct), V)  # (n, u, V)
            choose(t, L[:, torch.tensor([where[p] for p in prefixes])], torch.arange(G))
    return LinGenResult(tokens, logits, rows)


def position_kl(model: LanguageModel, target, tokens: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-position KL(softmax(logits[g, t]) ‖ Pr_M[· | h_targ ∘ z^(g)_{1:t−1}]) (paper A, Figure 5).

    The first argument is the generator being scored (LinGen or a baseline), the second the model's
    true next-token distribution after the target history and the same generated prefix.

    Parameters
    ----------
    model : LanguageModel
        M, the reference.
    target : sequence of token ids
        h_targ.
    tokens : (G, m) LongTensor
        The generated continuations.
    logits : (G, m, V) tensor
        The generator's logits at each position (e.g. :attr:`LinGenResult.logits`).

    Returns
    -------
    (G, m) float64 tensor of KL values (nats); sum over positions for Figure 5's "total".

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 5, 2, generator=0)
    >>> out = lingen(m, [(2,)], torch.ones(1), 3, generator=0)   # H = {h_targ}, v = 1: sampling from M
    >>> float(position_kl(m, (2,), out.tokens, out.logits).abs().max()) < 1e-12
    True
    """
    check_model("model", model)
    V = model.vocab_size
    (h,) = as_token_list("target", [target], V)
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        raise ValueError(f"tokens must be a (G, m) LongTensor; got {getattr(tokens, 'shape', type(tokens).__name__)}")
    q = _as_matrix("logits", logits, (3,))
    G, m = tokens.shape
    if q.shape != (G, m, V):
        raise ValueError(f"logits must have shape (G, m, V) = ({G}, {m}, {V}); got {tuple(q.shape)}")
    cont = getattr(model, "continuation_logits", None)
    if callable(cont) and m > 0:
        truth = cont(h, tokens[:, : m - 1].to(getattr(model, "device", "cpu")))  # (G, m, V)
    else:
        prefixes = [tuple(r[:t]) for r in tokens.tolist() for t in range(m)]
        truth = logit_matrix(model, [h], prefixes).reshape(G, m, V)
    lp = torch.log_softmax(truth.to("cpu", torch.float64), dim=-1)  # (G, m, V)
    lq = torch.log_softmax(q, dim=-1)
    return (lq.exp() * (lq - lp)).sum(-1)  # (G, m)


class ContextWindow(LogitModel):
    """A model that sees only the last ``window`` tokens of its prefix (paper A, §3.3 baseline (b)).

    ``logits(prefixes)`` is ``model.logits(prefixes[:, -window:])``: older tokens are dropped (the
    paper masks them out; for a model with a start token the start token stays in front).

    Parameters
    ----------
    model : LanguageModel
    window : int >= 0

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> base = random_isan(3, 6, 2, generator=0)
    >>> short = ContextWindow(base, 2)
    >>> torch.allclose(short.logits([[0, 1, 2]]), base.logits([[1, 2]]), rtol=0, atol=1e-14)
    True
    """

    def __init__(self, model: LanguageModel, window: int):
        self.model = model
        self.window = check_int("window", window, minimum=0)
        self.vocab_size = model.vocab_size
        self.horizon = model.horizon
        self.device = getattr(model, "device", torch.device("cpu"))
        self.dtype = getattr(model, "dtype", torch.float64)
        self.name = f"{getattr(model, 'name', type(model).__name__)}[last {self.window}]"

    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        keep = prefixes[:, max(0, prefixes.shape[1] - self.window):] if self.window else prefixes[:, :0]
        return self.model.logits(keep)
