"""A held-out certificate of TV(P, Q) for a learned sampler Q, from fresh samples of the oracle P.

For a path y ~ P, the per-path statistic

    x(y) = (1 − Q(y)/P(y))₊ ∈ [0, 1]

has mean E_P[x] = Σ_y (P(y) − Q(y))₊ = TV(P, Q) *exactly* (no approximation: the positive part of
P − Q sums to the TV distance). Its logits along y give P(y); the sampler's give Q(y). So n fresh
paths make n i.i.d. draws of a [0, 1] variable whose mean is the quantity the learner promises
(paper B's guarantee is a TV bound), and a one-sided upper confidence bound on that mean at level δ
certifies TV(P, Q) ≤ bound with probability ≥ 1 − δ over the paths — whatever produced Q, as long as
the paths are drawn after Q is fixed.

Two bounds (both valid for any variable in [0, 1]):

* ``"kl"`` — the Chernoff–Hoeffding bound in its KL form (Hoeffding 1963, Theorem 1, which holds for
  bounded variables since E e^{λX} ≤ 1 − μ + μ e^λ on [0, 1]): the largest μ with
  n·kl(x̄ ‖ μ) ≤ ln(1/δ). Tight when x is nearly Bernoulli (most paths x = 0, a few near 1).
* ``"bernstein"`` — the empirical Bernstein bound of Maurer & Pontil (2009, Theorem 4):
  x̄ + √(2 V̂ ln(2/δ)/n) + 7 ln(2/δ)/(3(n − 1)), V̂ the unbiased sample variance. Tight when x has a
  small variance (every path off by about the same amount).
* ``"min"`` — both at δ/2 and the smaller (a union bound keeps the level δ).

``benchmarks/bench_certificate.py`` measures the three on the learner's own x's and on synthetic
ones; the learner's default is chosen there (see :class:`logitrank.algorithms.ApproxSettings`).

Noisy oracles: if the oracle's mean-centred logits are within ξ of the truth's in every entry, each
next-token log-probability is within 2ξ, so log P_oracle(y) − log P_truth(y) ∈ [−2Tξ, 2Tξ] and
TV(P_truth, P_oracle) = E_{P_oracle}[(1 − P_truth/P_oracle)₊] ≤ 1 − e^{−2Tξ}. The certificate then
bounds TV to the truth by the bound to the oracle plus that term (``oracle_error=ξ``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from logitrank._validation import check_int, check_real

__all__ = [
    "CERT_BOUNDS",
    "TVCertificate",
    "bernstein_upper_bound",
    "default_n_cert",
    "kl_upper_bound",
    "tv_certificate",
    "tv_statistic",
]

CERT_BOUNDS = ("kl", "bernstein", "min")


@dataclass(frozen=True)
class TVCertificate:
    """An upper confidence bound on TV(P, Q) from n fresh paths of P.

    Attributes
    ----------
    n : int
        Paths used.
    estimate : float
        x̄, the unbiased estimate of TV(P_oracle, Q).
    bound : float
        Upper confidence bound on TV at level ``delta`` (to the truth when ``oracle_error`` > 0).
    oracle_bound : float
        The same bound on TV(P_oracle, Q) before the noisy-oracle widening.
    widening : float
        1 − e^{−2Tξ}, added for an oracle with per-logit error ξ (0 for an exact oracle).
    delta : float
        The level: P(TV > bound) ≤ delta over the paths.
    method : str
        "kl", "bernstein" or "min".
    """

    n: int
    estimate: float
    bound: float
    oracle_bound: float
    widening: float
    delta: float
    method: str

    def certifies(self, epsilon: float) -> bool:
        """True when the bound is at most ``epsilon``."""
        return self.bound <= epsilon


def tv_statistic(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """x = (1 − Q(y)/P(y))₊ per path: (n,) log P(y), (n,) log Q(y) → (n,) float64 in [0, 1].

    Computed as −expm1(log Q − log P) clipped at 0, so ratios near 1 keep their precision.
    Paths with P(y) = 0 cannot be drawn from P and are rejected.

    Examples
    --------
    >>> import torch
    >>> p, q = torch.tensor([0.5, 0.25], dtype=torch.float64), torch.tensor([0.25, 0.5], dtype=torch.float64)
    >>> tv_statistic(p.log(), q.log()).tolist()
    [0.5, 0.0]
    """
    log_p = torch.as_tensor(log_p, dtype=torch.float64).reshape(-1)
    log_q = torch.as_tensor(log_q, dtype=torch.float64).reshape(-1)
    if log_p.shape != log_q.shape:
        raise ValueError(f"log_p and log_q must have the same length; got {log_p.numel()} and {log_q.numel()}")
    if bool(torch.isneginf(log_p).any()) or bool(torch.isnan(log_p).any()):
        raise ValueError("log_p must be finite: a path drawn from P has P(y) > 0")
    return (-torch.expm1(log_q - log_p)).clamp(0.0, 1.0)


def _kl_bernoulli(p: float, q: float) -> float:
    """kl(p ‖ q) between Bernoulli(p) and Bernoulli(q), p, q ∈ [0, 1]."""
    def term(a, b):
        if a == 0.0:
            return 0.0
        if b == 0.0:
            return math.inf
        return a * math.log(a / b)
    return term(p, q) + term(1.0 - p, 1.0 - q)


def kl_upper_bound(mean: float, n: int, delta: float) -> float:
    """The largest μ ∈ [mean, 1] with n·kl(mean ‖ μ) ≤ ln(1/δ) (bisection to 1e-12).

    Examples
    --------
    >>> round(kl_upper_bound(0.0, 100, 0.05), 4)   # 1 − δ^{1/n}
    0.0295
    """
    if not 0.0 <= mean <= 1.0:
        raise ValueError(f"mean must lie in [0, 1]; got {mean}")
    level = math.log(1.0 / delta) / n
    if mean == 0.0:  # closed form: kl(0 ‖ μ) = −ln(1 − μ)
        return -math.expm1(-level)
    lo, hi = mean, 1.0
    if _kl_bernoulli(mean, hi) <= level:
        return 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _kl_bernoulli(mean, mid) <= level:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return hi


def bernstein_upper_bound(x: torch.Tensor, delta: float) -> float:
    """Maurer & Pontil (2009, Theorem 4): x̄ + √(2 V̂ ln(2/δ)/n) + 7 ln(2/δ)/(3(n − 1)), capped at 1.

    ``x`` is (n,) in [0, 1] with n ≥ 2; V̂ is the unbiased sample variance.
    """
    n = x.numel()
    if n < 2:
        return 1.0
    log_term = math.log(2.0 / delta)
    var = float(x.var(unbiased=True))
    return min(1.0, float(x.mean()) + math.sqrt(2.0 * var * log_term / n) + 7.0 * log_term / (3.0 * (n - 1)))


def tv_certificate(
    x: torch.Tensor, *, delta: float, method: str = "kl", horizon: int = 1, oracle_error: float = 0.0
) -> TVCertificate:
    """Upper confidence bound on TV from per-path statistics (see :func:`tv_statistic`).

    Parameters
    ----------
    x : (n,) tensor in [0, 1]
        One value per fresh path y ~ P_oracle.
    delta : float in (0, 1)
        Level of the bound.
    method : "kl" | "bernstein" | "min"
    horizon : int
        T, the path length (only used with ``oracle_error``).
    oracle_error : float >= 0
        ξ, the oracle's largest per-logit error against the truth; the bound is widened by 1 − e^{−2Tξ}.

    Examples
    --------
    >>> import torch
    >>> c = tv_certificate(torch.zeros(200), delta=0.05)
    >>> round(c.bound, 4), c.certifies(0.1)
    (0.0149, True)
    """
    x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
    n = check_int("n (paths)", x.numel(), minimum=1)
    delta = check_real("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    if method not in CERT_BOUNDS:
        raise ValueError(f"method must be one of {CERT_BOUNDS}; got {method!r}")
    oracle_error = check_real("oracle_error", oracle_error, low=0.0)
    horizon = check_int("horizon", horizon, minimum=1)
    if bool(((x < 0) | (x > 1) | torch.isnan(x)).any()):
        raise ValueError("x must lie in [0, 1] (use tv_statistic)")
    mean = float(x.mean())
    if method == "kl":
        ub = kl_upper_bound(mean, n, delta)
    elif method == "bernstein":
        ub = bernstein_upper_bound(x, delta)
    else:
        ub = min(kl_upper_bound(mean, n, delta / 2), bernstein_upper_bound(x, delta / 2))
    widening = -math.expm1(-2.0 * horizon * oracle_error)
    return TVCertificate(n=n, estimate=mean, bound=min(1.0, ub + widening), oracle_bound=ub, widening=widening,
                         delta=delta, method=method)


def default_n_cert(epsilon: float, epochs: int, delta: float) -> int:
    """Paths per epoch so that a sampler with TV = ε/4 is certified at ε with high probability.

    n = ⌈ln(K/δ) / kl(ε/4 ‖ ε)⌉ makes the KL bound of a sample mean at ε/4 exactly ε at level δ/K;
    a mean that fluctuates up to ε/2 still certifies at about twice that n, so the default is
    2·ln(K/δ)/kl(ε/4 ‖ ε), rounded up (e.g. 266 paths for ε = 0.1, K = 16, δ = 0.05).
    """
    return max(2, math.ceil(2.0 * math.log(epochs / delta) / _kl_bernoulli(epsilon / 4, epsilon)))
