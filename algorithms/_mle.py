"""A learner that sees samples only: maximum-likelihood fitting of an ISAN by gradient descent.

The baseline of the samples-versus-queries contrast (paper A, Theorem C.13): noisy parity is
hard to learn from samples, so this learner should stall near the trivial model as n grows, while
:func:`learn_isan` (logit queries) recovers it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from logitrank._validation import as_generator, check_int, check_real, check_tokens, resolve_dtype
from logitrank.synth import TimeVaryingISAN

__all__ = ["MLEReport", "fit_isan_mle"]


@dataclass
class MLEReport:
    """Training trace of :func:`fit_isan_mle`: per-restart final mean NLL (nats per sequence)."""

    final_nll: list[float]
    best_restart: int
    steps: int


def _mean_nll(A, B, x0, seqs) -> torch.Tensor:
    """Mean −log Pr[sequence] of a differentiable ISAN: A (T, V, d, d), B (T, V, d), x0 (d,)."""
    n, T = seqs.shape
    x = x0.expand(n, -1)  # (n, d)
    total = x0.new_zeros(n)
    for s in range(T):
        lp = torch.log_softmax(x @ B[s].T, dim=-1)  # (n, V)
        total = total + lp.gather(1, seqs[:, s : s + 1]).squeeze(1)
        x = torch.einsum("nij,nj->ni", A[s][seqs[:, s]], x)  # (n, d)
    return -total.mean()


def fit_isan_mle(
    samples,
    *,
    vocab_size: int,
    hidden_dim: int,
    steps: int = 300,
    lr: float = 0.05,
    restarts: int = 2,
    init_scale: float = 0.5,
    generator,
    dtype=None,
) -> tuple[TimeVaryingISAN, MLEReport]:
    """Fit a time-varying ISAN of the given hidden dim to samples by full-batch Adam on the NLL.

    Parameters
    ----------
    samples : (n, T) LongTensor
        Training sequences.
    vocab_size, hidden_dim : int
        V and d of the fitted ISAN.
    steps, lr : int, float
        Adam iterations and learning rate per restart.
    restarts : int
        Independent initialisations; the one with the lowest final NLL is returned.
    init_scale : float
        Standard deviation of the initial B and of the perturbation of A around the identity.
    generator : torch.Generator or int
        Initialisation randomness.

    Returns
    -------
    (TimeVaryingISAN, MLEReport)

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> truth = random_isan(2, 3, 1, generator=0)
    >>> fitted, rep = fit_isan_mle(truth.sample(2000, generator=1), vocab_size=2, hidden_dim=1,
    ...                            steps=200, restarts=1, generator=0)
    >>> fitted.horizon, fitted.hidden_dim
    (3, 1)
    """
    V = check_int("vocab_size", vocab_size, minimum=2)
    d = check_int("hidden_dim", hidden_dim, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    init_scale = check_real("init_scale", init_scale, low=0.0)
    dtype = resolve_dtype("dtype", dtype)
    seqs = check_tokens("samples", samples, vocab_size=V, device=torch.device("cpu"))
    if seqs.shape[0] == 0 or seqs.shape[1] == 0:
        raise ValueError(f"samples must hold at least one sequence of length >= 1; got shape {tuple(seqs.shape)}")
    T = seqs.shape[1]
    gen = as_generator(generator, torch.device("cpu"))
    best, finals = None, []
    for _ in range(restarts):
        A = (torch.eye(d, dtype=dtype) + init_scale * torch.randn(T, V, d, d, generator=gen, dtype=dtype)).requires_grad_()
        B = (init_scale * torch.randn(T, V, d, generator=gen, dtype=dtype)).requires_grad_()
        x0 = torch.randn(d, generator=gen, dtype=dtype).requires_grad_()
        opt = torch.optim.Adam([A, B, x0], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            loss = _mean_nll(A, B, x0, seqs)
            loss.backward()
            opt.step()
        with torch.no_grad():
            final = float(_mean_nll(A, B, x0, seqs))
        finals.append(final)
        if best is None or final < best[0]:
            best = (final, A.detach().clone(), B.detach().clone(), x0.detach().clone())
    _, A, B, x0 = best
    return TimeVaryingISAN(A, B, x0), MLEReport(finals, finals.index(best[0]), steps)
