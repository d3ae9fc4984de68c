"""Logits from a completions server: chosen log-probabilities (token ids), top-k with logit bias (the exact
method), and bisection.

A server returns, for a prompt y and a bias vector b (b_z ∈ [−B, B], B = ``bias_limit``), the k
largest of lp_b(z) = l_z + b_z − log Σ_{z'} exp(l_{z'} + b_{z'}), where l are the model's logits
(any per-prompt shift). Differences of two returned tokens cancel the normaliser:
lp_b(z) − lp_b(r) = (l_z + b_z) − (l_r + b_r). Everything below reads such differences, relative
to a reference token, for the columns C = (c_1, …, c_m) a caller needs, and returns the logits
centred over C:

    L^C_z = d_z − (1/m) Σ_{c ∈ C} d_c,   d_z = l_z − l_ref.

With C = Σ (all V tokens) this is Definition 2.1's mean-centred logit L_M[z | y]. On a subset it
equals L_M[z | y] − (1/m) Σ_{c∈C} L_M[c | y]: one constant per prompt, a rank-one change of any
matrix of such rows (so a rank read on a column subset is the rank of the mean-centred rows ± 1).

**Token ids** (vLLM's ``logprob_token_ids``; no bias). A request may name up to S = 128 token ids
(``token_ids_limit``) and gets back lp(z) = l_z − log Σ_{z'} exp(l_{z'}) for each of them (and for the
completion's token, dropped here): the columns in ⌈m/S⌉ calls per prompt, every call answered by the
same normaliser (one forward pass per prompt), so d_z = lp(z) − lp(c_1) and L^C_z = lp(z) − mean_C lp.
|lp̂ − lp| ≤ δ gives |L̂^C_z − L^C_z| ≤ 2δ. No bias limit: a logit far below the top is read as well,
unless the server clamps it (vLLM writes −9999 for −inf: :class:`RecoveryError`).

**Exact** (openlogprobs' exact solve; Carlini et al. 2024, §5.3). Reference r = c_1; per call put
+B on r and on k − 1 further targets and ask ``logprobs=k``. All k biased tokens come back when
each biased logit exceeds every unbiased one (l_z + B > max_{unbiased} l), and then
d_z = lp_b(z) − lp_b(r) exactly: ⌈(m − 1)/(k − 1)⌉ calls per prompt. If δ bounds the error of one
returned log-probability (``logprob_error``), |d̂_z − d_z| ≤ 2δ and |L̂^C_z − L^C_z| ≤ 4δ. A target
that does not come back lies more than B below the top: :class:`RecoveryError` (no allowed bias
can read it).

**Bisection** (openlogprobs' bisection; needs only the argmax, ``logprobs=1``). One call without
bias finds the top token t. For every other target z the gap g_z = l_t − l_z ∈ [0, B] is the
smallest bias on z that makes z the argmax: bisect on [0, B] for s = ⌈log₂(B/τ)⌉ calls
(τ = ``bisection_tol``), then ĝ_z = midpoint of the final interval, |ĝ_z − g_z| ≤ τ/2 + 2δ (an
argmax read within 2δ of the threshold may be wrong). d_z = −g_z; |L̂^C_z − L^C_z| ≤ τ + 4δ.
1 + (m − 1)·s calls per prompt (one more per token that never becomes the argmax, to tell
g_z ≈ B from g_z > B).

References
----------
J. Chiu, openlogprobs (2023), https://github.com/justinchiu/openlogprobs.
N. Carlini et al., "Stealing part of a production language model", ICML 2024.
M. Finlayson, X. Ren, S. Swayamdipta, "Logits of API-protected LLMs leak proprietary information", 2024.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._errors import RecoveryError

__all__ = ["bisect_gap", "centre", "exact_differences", "exact_requests", "token_id_chunks", "token_id_logprobs"]

#: vLLM's stand-in for a log-probability of −inf in its answers (``max(logprob, -9999.0)``)
CLAMPED = -9999.0


def token_id_chunks(columns: Sequence[int], size: int) -> list[tuple[int, ...]]:
    """The ``logprob_token_ids`` of each call of the token-id method: the columns in chunks of ``size``.

    Returns ⌈m/size⌉ tuples.

    >>> token_id_chunks([7, 1, 2, 3, 9], 2)
    [(7, 1), (2, 3), (9,)]
    """
    cols = [int(c) for c in columns]
    return [tuple(cols[i : i + size]) for i in range(0, len(cols), size)]


def token_id_logprobs(columns: Sequence[int], chunks: Sequence[tuple[int, ...]],
                      answers: Sequence[dict[int, float]], *, prompt=()) -> np.ndarray:
    """lp(c) for every column from the answers to :func:`token_id_chunks` → (m,) float64.

    Every asked id must be in its answer with a log-probability above vLLM's clamp (−9999, its −inf);
    ``prompt`` only names the request in the :class:`RecoveryError` raised otherwise.

    >>> token_id_logprobs([7, 1, 2], [(7, 1), (2,)], [{7: -1.0, 1: -0.5, 4: -0.1}, {2: -3.0}])
    array([-1. , -0.5, -3. ])
    """
    position = {t: i for i, t in enumerate(columns)}
    out = np.zeros(len(columns))
    where = f"prompt {list(prompt)[:8]}{'…' if len(prompt) > 8 else ''}"
    for chunk, top in zip(chunks, answers):
        missing = [t for t in chunk if t not in top]
        if missing:
            raise RecoveryError(f"token {missing[0]} was asked in logprob_token_ids but did not come back ({where}; "
                                f"{len(missing)} of {len(chunk)} ids missing)")
        for t in chunk:
            if top[t] <= CLAMPED:
                raise RecoveryError(f"token {t} came back with log-probability {top[t]:g} ({where}), vLLM's stand-in "
                                    "for -inf: its logit is not finite, so no centred logit can be read")
            out[position[t]] = top[t]
    return out


def exact_requests(columns: Sequence[int], k: int, bias: float) -> list[dict[int, float]]:
    """The logit_bias of each call of the exact method for columns C: +``bias`` on c_1 and on k − 1 targets.

    Returns ⌈(m − 1)/(k − 1)⌉ dicts (none when m = 1: one column has nothing to read).

    >>> exact_requests([7, 1, 2, 3], 3, 100.0)
    [{7: 100.0, 1: 100.0, 2: 100.0}, {7: 100.0, 3: 100.0}]
    """
    ref, rest = columns[0], list(columns[1:])
    return [{ref: bias, **{t: bias for t in rest[i : i + k - 1]}} for i in range(0, len(rest), k - 1)]


def exact_differences(columns: Sequence[int], requests: Sequence[dict[int, float]],
                      answers: Sequence[dict[int, float]], *, prompt=()) -> np.ndarray:
    """d_c = l_c − l_{c_1} for every column from the answers to :func:`exact_requests` → (m,) float64.

    Every biased token of a request must be in its answer; ``prompt`` only names the request in the
    :class:`RecoveryError` raised when one is not.

    >>> cols = [7, 1, 2]
    >>> exact_differences(cols, exact_requests(cols, 3, 100.0), [{7: -1.0, 1: -0.5, 2: -3.0}])
    array([ 0. ,  0.5, -2. ])
    """
    ref = columns[0]
    out = np.zeros(len(columns))
    position = {t: i for i, t in enumerate(columns)}
    for request, top in zip(requests, answers):
        missing = [t for t in request if t not in top]
        if missing:
            bias = request[missing[0]]
            raise RecoveryError(
                f"token {missing[0]} did not come back among the top {len(request)} log-probabilities with +{bias:g} "
                f"on it and on the reference token {ref} (prompt {list(prompt)[:8]}{'…' if len(prompt) > 8 else ''}): "
                f"its logit (or the reference's) lies more than bias_limit={bias:g} below the largest logit, which no "
                "allowed bias can read")
        for t in request:
            out[position[t]] = top[t] - top[ref]
    return out


def bisect_gap(is_top: Callable[[float], bool], bias_limit: float, steps: int) -> tuple[float, int]:
    """The gap g = l_top − l_z from ``is_top(b)`` (is z the argmax with bias b on it?) by bisection on [0, B].

    Returns (ĝ, calls) with |ĝ − g| ≤ B / 2^(steps+1) for exact answers; raises :class:`RecoveryError`
    when z is not the argmax even at b = B (g > B).

    >>> bisect_gap(lambda b: b > 1.3, 4.0, 12)
    (1.30029296875, 12)
    """
    lo, hi, calls, flipped = 0.0, float(bias_limit), 0, False
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        calls += 1
        if is_top(mid):
            hi, flipped = mid, True
        else:
            lo = mid
    if not flipped:
        calls += 1
        if not is_top(float(bias_limit)):
            raise RecoveryError(f"the token is not the argmax even with bias {bias_limit:g}: its logit lies more than "
                                "bias_limit below the largest, which no allowed bias can read")
    return 0.5 * (lo + hi), calls


def centre(differences: np.ndarray) -> np.ndarray:
    """Differences d over the columns → logits centred over the columns, d − mean(d) (module docstring).

    >>> centre(np.array([0.0, 1.0, 2.0]))
    array([-1.,  0.,  1.])
    """
    return differences - differences.mean(axis=-1, keepdims=True)
