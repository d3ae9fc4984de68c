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

Noisy oracles (:func:`oracle_widening`): if the oracle's logits are within ξ of the truth's in every
entry, TV(P_truth, P_oracle) over length-T paths is at most ξ·√T/2 (and the smaller of the other
bounds there, via KL ≤ T·ξ²/2); the certificate bounds TV to the truth by the bound to the oracle
plus that term (triangle inequality; ``oracle_error=ξ``). The earlier widening 1 − e^{−2Tξ} is kept
as ``widening="log_ratio"``; ``benchmarks/measure_learner_round2.py`` measures both against the
exact TV(truth, oracle).

Sample size (:func:`default_n_cert`): sized for completeness — a sampler whose TV is 0.7·ε is
certified at ε with probability ≥ 0.9 — and :func:`certificate_power` computes that probability
exactly for the worst-case (Bernoulli) statistic.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import torch

from logitrank._validation import check_int, check_real

__all__ = [
    "CERT_BOUNDS",
    "WIDENINGS",
    "TVCertificate",
    "bernstein_upper_bound",
    "certificate_power",
    "default_n_cert",
    "kl_upper_bound",
    "oracle_widening",
    "tv_certificate",
    "tv_statistic",
]

CERT_BOUNDS = ("kl", "bernstein", "min")
#: How an oracle error ξ widens the certificate: "kl" (the tightest proved here, the default) or
#: "log_ratio" (1 − e^{−2Tξ}, the widening before round 2, kept for comparison).
WIDENINGS = ("kl", "log_ratio")


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
        :func:`oracle_widening` of the oracle's per-logit error ξ (0 for an exact oracle), added.
    delta : float
        The level: P(TV > bound) ≤ delta over the paths.
    method : str
        "kl", "bernstein" or "min".
    widening_method : str
        "kl" or "log_ratio" (see :func:`oracle_widening`).
    """

    n: int
    estimate: float
    bound: float
    oracle_bound: float
    widening: float
    delta: float
    method: str
    widening_method: str = "kl"

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


def oracle_widening(oracle_error: float, horizon: int, method: str = "kl") -> float:
    """An upper bound on TV(P_truth, P_oracle) over length-T paths when every logit is off by at most ξ.

    ξ (``oracle_error``) is the oracle's largest per-entry logit error against the truth at every
    prefix: ‖ℓ_oracle(h) − ℓ_truth(h)‖_∞ ≤ ξ for every h with |h| < T (mean-centred or not: a shift
    common to all tokens leaves the next-token distribution unchanged). Paper B's noisy oracle
    (docs/approx-learner.md, "Setting": "an approximate oracle returns them up to an additive error
    ξ per entry").

    ``method="kl"`` (default) returns the smallest of four proved bounds, with KL_T := T·ξ²/2:

        min(1, ξ·√T/2, √(1 − e^{−KL_T}), T·tanh(ξ/2), 1 − e^{−2Tξ}).

    Proof sketch. Fix a prefix; let δ = ℓ_oracle − ℓ_truth (|δ_z| ≤ ξ), p = softmax(ℓ_truth),
    q = softmax(ℓ_oracle). The log-ratio X(z) = log q(z)/p(z) = δ_z − log E_p e^δ lies in an interval
    of length osc(δ) = max δ − min δ ≤ 2ξ, and E_p e^X = 1.

    1. Per-step KL. Hoeffding's lemma for X under p: 0 = log E_p e^X ≤ E_p X + (2ξ)²/8, so
       KL(p ‖ q) = −E_p X ≤ ξ²/2.
    2. Chain rule: KL(P_truth ‖ P_oracle) = Σ_{t ≤ T} E_{y_{<t} ~ P_truth} KL(p_t ‖ q_t) ≤ T·ξ²/2 = KL_T.
    3. Pinsker: TV ≤ √(KL_T/2) = ξ·√T/2. Bretagnolle–Huber: TV ≤ √(1 − e^{−KL_T}).
    4. Per-step TV: with q/p ∈ [a, a·e^{2ξ}] the largest TV is tanh(2ξ/4) (the two-point extreme
       optimised over its mass), and the hybrid argument TV ≤ Σ_t E TV(p_t, q_t) gives T·tanh(ξ/2).
    5. The earlier bound: |log P_oracle(y) − log P_truth(y)| ≤ 2Tξ, so TV = E_{P_oracle}(1 − P_truth/
       P_oracle)₊ ≤ 1 − e^{−2Tξ}.

    Every term is a bound, so their minimum is. For small ξ the first wins: ξ√T/2 against the old
    ≈ 2Tξ, a factor 4√T tighter. It is near tight: on a two-token model with uniform truth and
    ±ξ errors, TV → 2Φ(ξ√T/2) − 1 ≈ 0.40·ξ√T (Gaussian limit), 0.8 of the bound.

    ``method="log_ratio"`` returns the earlier 1 − e^{−2Tξ} alone (for comparison).

    Examples
    --------
    >>> round(oracle_widening(0.01, 5), 5), round(oracle_widening(0.01, 5, "log_ratio"), 5)
    (0.01118, 0.09516)
    """
    xi = check_real("oracle_error", oracle_error, low=0.0)
    T = check_int("horizon", horizon, minimum=1)
    if method not in WIDENINGS:
        raise ValueError(f"widening must be one of {WIDENINGS}; got {method!r}")
    old = -math.expm1(-2.0 * T * xi)
    if method == "log_ratio":
        return old
    kl = T * xi * xi / 2.0
    return min(1.0, old, T * math.tanh(xi / 2.0), math.sqrt(kl / 2.0), math.sqrt(-math.expm1(-kl)))


def tv_certificate(
    x: torch.Tensor, *, delta: float, method: str = "kl", horizon: int = 1, oracle_error: float = 0.0,
    widening: str = "kl",
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
        ξ, the oracle's largest per-logit error against the truth; the bound is widened by
        :func:`oracle_widening` (ξ, T, ``widening``).
    widening : "kl" | "log_ratio"
        Which widening (default "kl", the tightest proved; "log_ratio" is 1 − e^{−2Tξ}).

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
    widen = oracle_widening(oracle_error, horizon, widening)
    if bool(((x < 0) | (x > 1) | torch.isnan(x)).any()):
        raise ValueError("x must lie in [0, 1] (use tv_statistic)")
    mean = float(x.mean())
    if method == "kl":
        ub = kl_upper_bound(mean, n, delta)
    elif method == "bernstein":
        ub = bernstein_upper_bound(x, delta)
    else:
        ub = min(kl_upper_bound(mean, n, delta / 2), bernstein_upper_bound(x, delta / 2))
    return TVCertificate(n=n, estimate=mean, bound=min(1.0, ub + widen), oracle_bound=ub, widening=widen,
                         delta=delta, method=method, widening_method=widening)


def default_n_cert(epsilon: float, epochs: int, delta: float, *, ratio: float = 0.7, power: float = 0.9) -> int:
    """Paths per epoch so that a sampler with TV = ratio·ε is certified at ε with probability ≈ ``power``.

    The certificate of one epoch is the KL bound at level δ/K (K = ``epochs``, a union bound over
    the epochs). With L = ln(K/δ), μ = ratio·ε and z the ``power`` quantile of N(0, 1):

        n = ⌈((√(2εL) + z·√(μ(1 − μ))) / (ε − μ))²⌉.

    Why. The bound is ≤ ε exactly when n·kl(x̄ ‖ ε) ≥ L (x̄ ≤ ε), and kl(m ‖ ε) ≥ (ε − m)²/(2ε) for
    m ≤ ε, so x̄ ≤ ε − √(2εL/n) suffices. The statistic lies in [0, 1] with mean μ, so its variance
    is at most μ(1 − μ) (the Bernoulli law is the worst); by the normal approximation x̄ stays below
    μ + z·√(μ(1 − μ)/n) with probability ≈ ``power``. Equating the two gives n. The normal step is
    an approximation: :func:`certificate_power` gives the exact Bernoulli power at this n
    (tests/algorithms/test_certificate.py checks it is ≥ ``power`` on a grid of ε, K, δ), and
    ``benchmarks/measure_learner_round2.py`` measures the learner's acceptance rate by TV/ε.

    Before round 2 the default was 2·ln(K/δ)/kl(ε/4 ‖ ε) (266 paths at ε = 0.1, K = 16, δ = 0.05),
    sized for TV = ε/4: its exact power at TV = 0.7ε is 0.04.

    Examples
    --------
    >>> default_n_cert(0.1, 16, 0.05)
    2182
    """
    epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0, low_open=True, high_open=True)
    epochs = check_int("epochs", epochs, minimum=1)
    delta = check_real("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    ratio = check_real("ratio", ratio, low=0.0, high=1.0, low_open=True, high_open=True)
    power = check_real("power", power, low=0.0, high=1.0, low_open=True, high_open=True)
    level, mu = math.log(epochs / delta), ratio * epsilon
    z = statistics.NormalDist().inv_cdf(power)
    root = (math.sqrt(2.0 * epsilon * level) + z * math.sqrt(mu * (1.0 - mu))) / (epsilon - mu)
    return max(2, math.ceil(max(root, 0.0) ** 2))


def certificate_power(n: int, mean: float, epsilon: float, delta: float) -> float:
    """P(the KL certificate of n paths at level δ is ≤ ε) when the statistic is Bernoulli(mean).

    The Bernoulli law has the largest variance of any [0, 1] law with that mean, so this is the
    worst case the sizing of :func:`default_n_cert` is meant for (exact: a binomial tail, the
    certified counts found by bisection over the monotone :func:`kl_upper_bound`).

    Examples
    --------
    >>> certificate_power(default_n_cert(0.1, 16, 0.05), 0.07, 0.1, 0.05 / 16) >= 0.9
    True
    """
    from scipy.stats import binom

    n = check_int("n", n, minimum=1)
    mean = check_real("mean", mean, low=0.0, high=1.0)
    if kl_upper_bound(0.0, n, delta) > epsilon:
        return 0.0
    lo, hi = 0, n  # the largest count k with kl_upper_bound(k/n) <= epsilon
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if kl_upper_bound(mid / n, n, delta) <= epsilon:
            lo = mid
        else:
            hi = mid - 1
    return float(binom.cdf(lo, n, mean))
