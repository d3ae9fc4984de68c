"""Logits from conditional samples only (paper B, §6 open problem 2; spec approx-learner.md).

An API that only samples next tokens — draw z ~ Pr_M[· | y_{1:t}] — gives logits only through
frequencies. With N draws after a prefix, the estimator here is

    p̂_z = (c_z + a) / (N + V·a),    L̂[z] = log p̂_z − (1/V) Σ_{z'} log p̂_{z'}

(counts c, pseudocount a = ½ by default so that no log is −∞; the mean-centring of Definition 2.1).

How many draws for error ξ (:func:`samples_per_logit`). Let λ bound the mean-centred logits,
|L[z]| <= λ. Then every p_z >= e^{−λ}/(V·e^{λ}) = e^{−2λ}/V =: p_min — the e^{2λ} cost. The
multiplicative Chernoff bound gives |p̂_z − p_z| <= η·p_z with probability >= 1 − 2·exp(−N p_z η²/3)
for η ∈ (0, 1); a union bound over the V tokens and η = 1 − e^{−ξ/2} (so that both log(1 + η) and
−log(1 − η) are <= ξ/2) make every |log p̂_z − log p_z| <= ξ/2, hence every centred logit within ξ,
with probability >= 1 − δ once

    N >= 3·V·e^{2λ}·ln(2V/δ) / (1 − e^{−ξ/2})²   (≈ 12·V·e^{2λ}·ln(2V/δ)/ξ² for small ξ),

the restatement's e^{2λ}|Σ|log(|Σ|/δ)/ξ² with explicit constants. The rule is for the plain frequency
(a = 0); the pseudocount moves p̂_z by at most a·V/N relative to it, below η·p_min whenever N is at
least the rule's value (then N·p_min >= 3/η² ≫ a·V), so it does not change the order.

:class:`SampleLogitOracle` turns this estimator into a :class:`logitrank.synth.LanguageModel`
whose ``logits`` are the estimates, so any learner of this package can run on conditional samples
alone and the samples it spent can be counted.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from logitrank._validation import check_int, check_real
from logitrank.synth import LanguageModel

__all__ = ["SampleLogitOracle", "estimate_logits", "logit_error", "samples_per_logit"]


def _check_rule_args(logit_range, vocab_size, delta):
    lam = check_real("logit_range", logit_range, low=0.0)
    V = check_int("vocab_size", vocab_size, minimum=2)
    delta = check_real("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    return lam, V, 3.0 * V * math.exp(2.0 * lam) * math.log(2.0 * V / delta)


def samples_per_logit(xi: float, logit_range: float, vocab_size: int, *, delta: float = 0.05) -> int:
    """Draws per prefix that make every mean-centred logit ξ-accurate with probability 1 − δ.

    N(ξ, λ) = ⌈3·V·e^{2λ}·ln(2V/δ) / (1 − e^{−ξ/2})²⌉ (derivation in the module docstring).

    Parameters
    ----------
    xi : float > 0
        Allowed error per mean-centred logit (max over tokens).
    logit_range : float >= 0
        λ, a bound on |L[z]| for every token of the prefix.
    vocab_size : int >= 2
    delta : float in (0, 1)

    Returns
    -------
    int

    Examples
    --------
    >>> samples_per_logit(0.1, 1.0, 3) < samples_per_logit(0.1, 2.0, 3)   # e^{2λ}: ×e² per unit of λ
    True
    >>> round(samples_per_logit(0.1, 2.0, 3) / samples_per_logit(0.1, 1.0, 3), 2)
    7.39
    """
    xi = check_real("xi", xi, low=0.0, low_open=True)
    _, _, base = _check_rule_args(logit_range, vocab_size, delta)
    return math.ceil(base / (1.0 - math.exp(-xi / 2.0)) ** 2)


def logit_error(n_samples: int, logit_range: float, vocab_size: int, *, delta: float = 0.05) -> float:
    """The ξ that :func:`samples_per_logit` guarantees with ``n_samples`` draws (inf when too few).

    Examples
    --------
    >>> xi = logit_error(10**6, 1.0, 3)
    >>> samples_per_logit(xi * 1.0001, 1.0, 3) <= 10**6
    True
    """
    n = check_int("n_samples", n_samples, minimum=1)
    _, _, base = _check_rule_args(logit_range, vocab_size, delta)
    s = math.sqrt(base / n)
    return math.inf if s >= 1 else -2.0 * math.log1p(-s)


def estimate_logits(counts: torch.Tensor, *, pseudocount: float = 0.5) -> torch.Tensor:
    """Mean-centred logits from next-token counts: (B, V) counts → (B, V) float64 estimates.

    Examples
    --------
    >>> import torch
    >>> estimate_logits(torch.tensor([[10, 10]]))
    tensor([[0., 0.]], dtype=torch.float64)
    """
    a = check_real("pseudocount", pseudocount, low=0.0)
    c = torch.as_tensor(counts, dtype=torch.float64)
    if c.ndim != 2 or (c < 0).any():
        raise ValueError(f"counts must be a (B, V) tensor of non-negative counts; got shape {tuple(c.shape)}")
    logp = (c + a).log()  # the normaliser cancels in the centring
    if not torch.isfinite(logp).all():
        raise ValueError("a token with zero count needs pseudocount > 0 (log 0 = −inf); got pseudocount=0")
    return logp - logp.mean(dim=1, keepdim=True)


class SampleLogitOracle:
    """A :class:`~logitrank.synth.LanguageModel` that answers logit queries from conditional samples.

    ``logits(prefixes)`` draws ``n_samples`` next tokens after each prefix from the wrapped model
    and returns :func:`estimate_logits` of the counts. The draws of a prefix come from a numpy
    generator seeded by (``seed``, the prefix), so a repeated query gets the same answer (an API
    whose answers were re-drawn could be averaged; that is the caller's budget, not this oracle's)
    and the answer does not depend on batching. ``sample`` returns the wrapped model's own
    sequences: each of their tokens is one conditional sample and is counted as such.

    The wrapped model is read only to simulate the sampling API (its probabilities are what the
    draws follow); a learner sees only the estimates. There is deliberately no ``logit_block``, so
    learners take the per-prefix ``logits`` path.

    Parameters
    ----------
    model : LanguageModel
        The model behind the sampling API.
    n_samples : int >= 1
        Draws per logit query, e.g. :func:`samples_per_logit`.
    seed : int >= 0
        Seed of every query's draws.
    pseudocount : float >= 0

    Attributes
    ----------
    logit_samples : int
        Next-token draws spent answering ``logits`` / ``log_probs`` (n_samples per prefix).
    sequence_samples : int
        Tokens of the sequences returned by ``sample`` (one conditional draw each).
    samples : int
        Their sum, the total spent.

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 4, 2, generator=0)
    >>> oracle = SampleLogitOracle(m, 10**6, seed=0)
    >>> err = (oracle.logits(torch.tensor([[0, 1]])) - m.logits(torch.tensor([[0, 1]]))).abs().max()
    >>> bool(err < 0.02), oracle.samples
    (True, 1000000)
    """

    def __init__(self, model: LanguageModel, n_samples: int, *, seed: int, pseudocount: float = 0.5):
        if not isinstance(model, LanguageModel):
            raise TypeError(f"model must follow the synth.LanguageModel protocol; got {type(model).__name__}")
        self.model = model
        self.n_samples = check_int("n_samples", n_samples, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.pseudocount = check_real("pseudocount", pseudocount, low=0.0)
        self.device = getattr(model, "device", torch.device("cpu"))
        self.dtype = getattr(model, "dtype", torch.float64)
        self.logit_samples = 0
        self.sequence_samples = 0

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def horizon(self) -> int | None:
        return self.model.horizon

    @property
    def samples(self) -> int:
        return self.logit_samples + self.sequence_samples

    def counts(self, prefixes) -> torch.Tensor:
        """(B, t) LongTensor → (B, V) int64 next-token counts of ``n_samples`` draws per prefix."""
        probs = self.model.log_probs(prefixes).detach().to("cpu", torch.float64).exp()  # (B, V); validates
        rows = torch.as_tensor(prefixes).to("cpu").tolist()
        out = np.empty((len(rows), self.vocab_size), dtype=np.int64)
        for i, (row, p) in enumerate(zip(rows, probs.numpy())):
            rng = np.random.default_rng([self.seed, len(row), *row])
            out[i] = rng.multinomial(self.n_samples, p / p.sum())
        self.logit_samples += len(rows) * self.n_samples
        return torch.from_numpy(out)

    def logits(self, prefixes) -> torch.Tensor:
        """Estimated mean-centred logits: (B, t) LongTensor → (B, V)."""
        est = estimate_logits(self.counts(prefixes), pseudocount=self.pseudocount)
        return est.to(self.device, self.dtype)

    def log_probs(self, prefixes) -> torch.Tensor:
        """``log_softmax`` of the estimated logits: (B, t) LongTensor → (B, V)."""
        return torch.log_softmax(self.logits(prefixes), dim=-1)

    def sample(self, n: int, *, generator, **kwargs) -> torch.Tensor:
        """The wrapped model's sequences, (n, length) LongTensor; counts n·length conditional draws."""
        out = self.model.sample(n, generator=generator, **kwargs)
        self.sequence_samples += int(out.numel())
        return out

    def log_prob(self, sequences) -> torch.Tensor:
        """Refused: a conditional-sampling API does not score sequences."""
        raise NotImplementedError(
            "SampleLogitOracle only samples; scoring sequences (log_prob) is not part of a conditional-sampling API"
        )

    def __repr__(self) -> str:
        return f"SampleLogitOracle({self.model!r}, n_samples={self.n_samples}, samples spent={self.samples})"
