"""Reconstruct (paper B, §2.3; spec "Reconstruct"): the joint LP over the chain of coefficients, and the
sampler it defines.

Level s (s = 1 … T − 1) keeps spanner histories h_{s,1..m_s}, representative futures F̂_s (words, see
:mod:`logitrank.algorithms._dist_spanner`), F̃_s = F̂_s ∪ Σ·F̂_{s+1} and the stored rows R_s (m_s, |F̃_s|).
For a prefix y_{1:t} (1 <= t <= T − 1) the LP finds c_s ∈ R^{m_s}, s = 1 … t, with

    c_1 = e_1 (level 1 is the empty history),      ‖c_s‖_∞ <= β,
    Σ_i c_{s,i} R_s[i, w] − Σ_j c_{s−1,j} R_{s−1}[j, y_{s−1}·w] = slack_{s,w}     (s >= 2, w ∈ F̂_s),

minimising Σ |slack|. The next-token logits are ℓ(z) = Σ_i c_{t,i} R_t[i, y_t·z]; at t = 0 they are
the root row L(∅). The LP depends on y_{1:t−1} only, so one solve serves all V continuations y_t.

The greedy baseline that the joint LP replaces lives in :mod:`logitrank.algorithms._greedy`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import torch

from logitrank._validation import check_int, check_real
from logitrank.synth import MAX_ENUMERATION, LanguageModel, LogitModel, all_sequences

from ._dist_spanner import word_rows

__all__ = ["lp_sampler", "LPSampler", "LevelData", "Reconstruction", "InfeasibleLPError", "extended_words"]

Word = tuple[int, ...]
ON_INFEASIBLE = ("uniform", "raise")
#: HiGHS options used unless ``solver_options`` is given: dual simplex without presolve. Measured on
#: the longest chain LP of a d = 8 / d = 32, T = 16 sampler (2 shared cores, so ±50%): 7 / 110 ms per
#: solve, against 11 / 183 ms with HiGHS's defaults and 34 / 430 ms with primal simplex.
DEFAULT_SOLVER_OPTIONS = {"presolve": "off", "simplex_strategy": 1}
#: Statuses under which cvxpy returns a primal solution we can check ourselves.
_SOLVED = ("optimal", "optimal_inaccurate")


def _check_slack_tol(value) -> float:
    """A slack tolerance: a finite float >= 0, or math.inf (the slack test is off)."""
    if isinstance(value, float) and value == float("inf"):
        return value
    return check_real("slack_tol", value, low=0.0)


class InfeasibleLPError(RuntimeError):
    """The chain LP of a prefix has no solution within the slack tolerance.

    Attributes
    ----------
    prefix : tuple of int
        y_{1:t−1}, the part of the prefix the LP depends on.
    status : str
        The cvxpy/HiGHS status ("optimal" when the solver succeeded but the slack is too large,
        "solver_error", "infeasible", …).
    slack : float
        Largest absolute chain slack of the solution (nan when the solver returned none).
    tol : float
        The slack tolerance it was held to.
    """

    def __init__(self, prefix: tuple, status: str, slack: float, tol: float):
        self.prefix, self.status, self.slack, self.tol = prefix, status, slack, tol
        super().__init__(
            f"the chain LP for prefix {prefix} is infeasible: solver status {status!r}, max slack "
            f"{slack:.3g} > slack_tol={tol:.3g}. The spanner histories do not represent this prefix "
            "within the box ‖c‖_∞ <= β; raise beta or slack_tol, or learn with more futures."
        )


@dataclass(frozen=True)
class LevelData:
    """What the learner stores for one level s (spec "State the learner keeps, per level s").

    Attributes
    ----------
    histories : list of m_s token tuples of length s − 1
    hat : list of words, F̂_s (must contain every single token)
    tilde : list of words, F̃_s ⊇ F̂_s ∪ Σ·F̂_{s+1}
    rows : (m_s, |F̃_s|) float64 tensor, R_s
    """

    histories: list
    hat: list
    tilde: list
    rows: torch.Tensor


@dataclass(frozen=True)
class Reconstruction:
    """The LP's answer for one prefix y_{1:t}.

    Attributes
    ----------
    coefficients : list of t (m_s,) float64 tensors, or None when infeasible
        c_1 … c_t.
    logits : (V,) float64 tensor or None
        ℓ(z) = Σ_i c_{t,i} R_t[i, y_t·z] (mean-centred); None when infeasible.
    status : str
        cvxpy status ("trivial" for t = 1, where no LP is needed).
    slack_total, slack_max : float
        Σ |slack| and max |slack| of the chain equalities at the returned c (recomputed in float64).
    feasible : bool
        The solver returned a solution and slack_max <= slack_tol.
    seconds : float
        Wall time of the solve (0 when it came from the memo).
    """

    coefficients: list | None
    logits: torch.Tensor | None
    status: str
    slack_total: float
    slack_max: float
    feasible: bool
    seconds: float = 0.0


def extended_words(hat: Sequence[Word], hat_next: Sequence[Word], vocab_size: int) -> list[Word]:
    """F̃_s = F̂_s ∪ Σ·F̂_{s+1}, F̂_s first, duplicates dropped, in a fixed order.

    Examples
    --------
    >>> extended_words([(0,), (1,)], [(0,), (1,)], 2)
    [(0,), (1,), (0, 0), (0, 1), (1, 0), (1, 1)]
    """
    out = list(dict.fromkeys(tuple(w) for w in hat))
    seen = set(out)
    for a in range(vocab_size):
        for w in hat_next:
            aw = (a,) + tuple(w)
            if aw not in seen:
                seen.add(aw)
                out.append(aw)
    return out


@dataclass
class _Chain:
    """The arrays the LP and the greedy maps read, as numpy float64 (levels are 1-based keys)."""

    P: dict = field(default_factory=dict)  # s → (m_s, |F̂_s|)             R_s on F̂_s
    Q: dict = field(default_factory=dict)  # s → (V, m_{s−1}, |F̂_s|)      R_{s−1} on a·F̂_s, per a
    Z: dict = field(default_factory=dict)  # t → (V, m_t, V)               R_t on a·z, per a
    root: np.ndarray | None = None  # (V,)                                  L(∅)


class _ChainLP:
    """The parameterised cvxpy problem of one prefix length t >= 2 (built once, re-solved per prefix).

    Standard form with split slacks: minimise Σ (p_s + n_s) subject to
    R_s[:, F̂_s]ᵀ c_s − R_{s−1}[:, y_{s−1}·F̂_s]ᵀ c_{s−1} − p_s + n_s = 0, p, n >= 0, |c_s| <= β
    (bounds, not rows). Against ``cp.norm1`` of the residuals (which cvxpy turns into two inequality
    rows per equality) this took 3× less solver time at d = 32, T = 16 (209 vs 620 ms, measured).
    """

    def __init__(self, chain: _Chain, t: int, beta: float):
        self.t = t
        P = chain.P
        self.c = {s: cp.Variable(P[s].shape[0], bounds=[-beta, beta], name=f"c{s}") for s in range(2, t + 1)}
        pos = {s: cp.Variable(P[s].shape[1], nonneg=True, name=f"p{s}") for s in range(2, t + 1)}
        neg = {s: cp.Variable(P[s].shape[1], nonneg=True, name=f"n{s}") for s in range(2, t + 1)}
        self.b2 = cp.Parameter(P[2].shape[1], name="b2")  # R_1[0, y_1·F̂_2]
        self.Q = {s: cp.Parameter(chain.Q[s].shape[1:], name=f"Q{s}") for s in range(3, t + 1)}
        chain_eqs = [P[2].T @ self.c[2] - pos[2] + neg[2] == self.b2]
        for s in range(3, t + 1):
            chain_eqs.append(P[s].T @ self.c[s] - self.Q[s].T @ self.c[s - 1] - pos[s] + neg[s] == 0)
        total = cp.sum(cp.hstack([cp.sum(pos[s]) + cp.sum(neg[s]) for s in range(2, t + 1)]))
        self.problem = cp.Problem(cp.Minimize(total), chain_eqs)


class LPSampler(LogitModel):
    """The learned model of paper B: next-token logits from the joint chain LP (spec "Reconstruct").

    A :class:`logitrank.synth.LanguageModel` (``logits``, ``log_probs``, ``sample``, ``log_prob``) plus
    ``distribution()`` by enumeration, so TV to the truth is computed exactly for small V**T or with
    :func:`logitrank.verify.tv_monte_carlo`. Build it with :func:`lp_sampler` (from spanner histories and
    futures) or get it from :func:`logitrank.algorithms.learn_approx`.

    Each prefix length t >= 2 has one cvxpy problem whose data that change with the prefix
    (R_1[0, y_1·F̂_2] and R_{s−1}[:, y_{s−1}·F̂_s]) are cvxpy Parameters, so a new prefix only
    re-binds them and re-solves with HiGHS (``warm_start=False``: cvxpy's HiGHS warm start passes
    the previous prefix's solution, and on these problems HiGHS's dual simplex then stops with
    "excessive dual values"). Solutions are memoised per y_{1:t−1}.

    [choice] Infeasible prefixes (max slack above ``slack_tol`` or no solver solution): with
    ``on_infeasible="uniform"`` (the spec's choice) every later token of that sequence is uniform
    — logits at a prefix are zero when the LP of it or of any shorter prefix failed, which keeps
    ``sample``, ``log_prob`` and ``distribution`` one consistent distribution — and the event is
    counted in ``lp_infeasible`` and ``fallback_prefixes``; with ``"raise"`` an
    :class:`InfeasibleLPError` carrying the solver status is raised.

    Attributes
    ----------
    vocab_size, horizon : int
    beta, slack_tol : float
    levels : list of LevelData, levels 1 … max(1, T − 1)
    lp_solves, lp_infeasible, fallback_prefixes : int
        Distinct LPs solved, those found infeasible, distinct prefixes answered by the fallback.
    lp_seconds : float
        Total wall time inside cvxpy's ``solve``.
    """

    def __init__(
        self,
        levels: Sequence[LevelData],
        *,
        vocab_size: int,
        horizon: int,
        beta: float,
        slack_tol: float,
        on_infeasible: str = "uniform",
        solver_options: dict | None = None,
    ):
        self.vocab_size, self.horizon = vocab_size, horizon
        self.device, self.dtype = torch.device("cpu"), torch.float64
        self.beta, self.slack_tol, self.on_infeasible = beta, slack_tol, on_infeasible
        self.solver_options = dict(DEFAULT_SOLVER_OPTIONS if solver_options is None else solver_options)
        self.levels = list(levels)
        self._chain = self._build_chain()
        self._problems: dict[int, _ChainLP] = {}
        self._solutions: dict[tuple, Reconstruction] = {}  # y_{1:t−1} → LP answer (coefficients only)
        self._states: dict[tuple, np.ndarray | None] = {}  # y_{1:t−1} → c_t, or None after a failure
        self.lp_solves = self.lp_infeasible = self.fallback_prefixes = 0
        self.lp_seconds = 0.0
        self._fallback_seen: set = set()

    def __repr__(self) -> str:
        sizes = [len(L.histories) for L in self.levels]
        return f"LPSampler(vocab_size={self.vocab_size}, horizon={self.horizon}, beta={self.beta}, spanner sizes={sizes})"

    # -- structure -------------------------------------------------------------------------------
    def _build_chain(self) -> _Chain:
        V, ch = self.vocab_size, _Chain()
        pos = [{w: j for j, w in enumerate(L.tilde)} for L in self.levels]
        R = [L.rows.detach().to("cpu", torch.float64).numpy() for L in self.levels]
        ch.root = R[0][0, [pos[0][(z,)] for z in range(V)]]
        for s in range(1, len(self.levels) + 1):
            i = s - 1
            ch.Z[s] = np.stack([R[i][:, [pos[i][(a, z)] for z in range(V)]] for a in range(V)]) if s < self.horizon else None
            if s >= 2:
                hat = self.levels[i].hat
                ch.P[s] = R[i][:, [pos[i][w] for w in hat]]  # (m_s, |F̂_s|)
                ch.Q[s] = np.stack([R[i - 1][:, [pos[i - 1][(a,) + w] for w in hat]] for a in range(V)])
        return ch

    @property
    def spanner_sizes(self) -> list[int]:
        """m_s for s = 1 … T − 1."""
        return [len(L.histories) for L in self.levels]

    def lp_size(self, t: int) -> tuple[int, int]:
        """(variables, chain equalities) of the LP of prefix length t (before cvxpy's reformulation)."""
        t = check_int("t", t, minimum=1, maximum=max(1, self.horizon - 1))
        return (sum(self._chain.P[s].shape[0] for s in range(2, t + 1)),
                sum(self._chain.P[s].shape[1] for s in range(2, t + 1)))

    # -- the LP ----------------------------------------------------------------------------------
    def _solve(self, key: tuple) -> Reconstruction:
        """The chain LP for y_{1:t−1} = key (t = len(key) + 1 >= 2), memoised."""
        hit = self._solutions.get(key)
        if hit is not None:
            return hit
        t, ch = len(key) + 1, self._chain
        lp = self._problems.get(t)
        if lp is None:
            lp = self._problems[t] = _ChainLP(ch, t, self.beta)
        lp.b2.value = ch.Q[2][key[0], 0]
        for s in range(3, t + 1):
            lp.Q[s].value = ch.Q[s][key[s - 2]]
        start = time.perf_counter()
        try:
            lp.problem.solve(solver=cp.HIGHS, warm_start=False, **self.solver_options)
            status = lp.problem.status
        except cp.error.SolverError:
            status = "solver_error"
        seconds = time.perf_counter() - start
        self.lp_solves += 1
        self.lp_seconds += seconds
        coefs = None
        slack_total = slack_max = float("nan")
        if status in _SOLVED and all(lp.c[s].value is not None for s in lp.c):
            coefs = [np.ones(1)] + [np.asarray(lp.c[s].value, dtype=np.float64) for s in range(2, t + 1)]
            slack = self._slack(key, coefs)
            slack_total, slack_max = float(np.abs(slack).sum()), float(np.abs(slack).max()) if slack.size else 0.0
        feasible = coefs is not None and slack_max <= self.slack_tol
        self.lp_infeasible += int(not feasible)
        out = Reconstruction(
            coefficients=None if coefs is None else [torch.from_numpy(c) for c in coefs],
            logits=None, status=status, slack_total=slack_total, slack_max=slack_max,
            feasible=feasible, seconds=seconds,
        )
        self._solutions[key] = out
        return out

    def _slack(self, key: tuple, coefs: list[np.ndarray]) -> np.ndarray:
        """All chain residuals R_s[:, F̂_s]ᵀ c_s − R_{s−1}[:, y_{s−1}·F̂_s]ᵀ c_{s−1}, concatenated."""
        ch = self._chain
        parts = [ch.P[s].T @ coefs[s - 1] - ch.Q[s][key[s - 2]].T @ coefs[s - 2] for s in range(2, len(key) + 2)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _state(self, key: tuple) -> np.ndarray | None:
        """c_t writing y_{1:t−1} = key (t = len(key) + 1), or None when this LP or an earlier one failed."""
        if key in self._states:
            return self._states[key]
        if len(key) == 0:
            state = np.ones(1)
        elif self._state(key[:-1]) is None:
            state = None
        else:
            sol = self._solve(key)
            state = sol.coefficients[-1].numpy() if sol.feasible else None
        self._states[key] = state
        return state

    def reconstruct(self, prefix) -> Reconstruction:
        """Reconstruct(y_{1:t}) of the spec: c_1 … c_t and the next-token logits at y_{1:t}.

        Parameters
        ----------
        prefix : sequence of t ints, 1 <= t <= T − 1

        Returns
        -------
        Reconstruction (its own LP only: a failure at a shorter prefix is not folded in here).
        """
        y = tuple(int(z) for z in prefix)
        if not 1 <= len(y) <= self.horizon - 1:
            raise ValueError(f"prefix must have length 1 … T − 1 = {self.horizon - 1}; got length {len(y)}")
        if min(y) < 0 or max(y) >= self.vocab_size:
            raise ValueError(f"prefix must hold token ids in [0, {self.vocab_size}); got {y}")
        t = len(y)
        if t == 1:
            sol = Reconstruction([torch.ones(1, dtype=torch.float64)], None, "trivial", 0.0, 0.0, True)
        else:
            sol = self._solve(y[:-1])
        if not sol.feasible:
            return sol
        c_t = sol.coefficients[-1].numpy()
        logits = torch.from_numpy(self._chain.Z[t][y[-1]].T @ c_t)  # (V,)
        return Reconstruction(sol.coefficients, logits, sol.status, sol.slack_total, sol.slack_max, True, sol.seconds)

    # -- the LanguageModel protocol ---------------------------------------------------------------
    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        n, t = prefixes.shape
        out = torch.zeros(n, self.vocab_size, dtype=torch.float64)
        if t == 0:
            return out + torch.from_numpy(self._chain.root)
        Z = self._chain.Z[t]  # (V, m_t, V)
        for i, row in enumerate(prefixes.tolist()):
            key = tuple(row[:-1])
            c = self._state(key)
            if c is None:
                if self.on_infeasible == "raise":
                    bad = next(key[:k] for k in range(1, len(key) + 1) if not self._solve(key[:k]).feasible)
                    sol = self._solve(bad)
                    raise InfeasibleLPError(bad, sol.status, sol.slack_max, self.slack_tol)
                if tuple(row) not in self._fallback_seen:
                    self._fallback_seen.add(tuple(row))
                    self.fallback_prefixes += 1
                continue  # zero logits: the uniform fallback
            out[i] = torch.from_numpy(Z[row[-1]].T @ c)
        return out

    def distribution(self, *, max_sequences: int = MAX_ENUMERATION) -> torch.Tensor:
        """Exact probabilities of all V**T sequences (lexicographic order of :func:`logitrank.synth.all_sequences`).

        Walks the prefix tree level by level: one LP per y_{1:t−1} (Σ_t V^{t−1} solves in all).
        """
        V, T = self.vocab_size, self.horizon
        max_sequences = check_int("max_sequences", max_sequences, minimum=1)
        if V**T > max_sequences:
            raise ValueError(
                f"distribution() enumerates V**T = {V}**{T} = {V**T} sequences, more than "
                f"max_sequences={max_sequences}; use logitrank.verify.tv_monte_carlo or raise max_sequences"
            )
        logp = torch.zeros(1, dtype=torch.float64)
        for t in range(T):
            lp = torch.log_softmax(self._raw_logits(all_sequences(V, t)), dim=-1)  # (V^t, V)
            logp = (logp.unsqueeze(1) + lp).reshape(-1)  # (V^(t+1),)
        return logp.exp()

    # -- the greedy baseline (algorithms/_greedy.py) -------------------------------------------------
    def greedy_coefficients(self, prefix) -> list[torch.Tensor]:
        """c_1 … c_t of the greedy one-step baseline for y_{1:t} (see :func:`logitrank.algorithms.greedy_coefficients`)."""
        from ._greedy import greedy_coefficients

        return greedy_coefficients(self, prefix)


def lp_sampler(
    model: LanguageModel,
    histories: Sequence[Sequence[Word]],
    futures: Sequence[Sequence[Word]],
    *,
    beta: float = 2.0,
    slack_tol: float = 1e-8,
    on_infeasible: str = "uniform",
    solver_options: dict | None = None,
) -> LPSampler:
    """The LP sampler of paper B (§2.3) from spanner histories and representative futures.

    Queries the rows R_s on F̃_s = F̂_s ∪ Σ·F̂_{s+1} and returns the :class:`LPSampler`.

    Parameters
    ----------
    model : LanguageModel with horizon T >= 1
        Queried for logits only.
    histories : T − 1 lists (one when T = 1)
        histories[s−1] = h_{s,1..m_s}, token tuples of length s − 1; histories[0] must be [()].
    futures : T lists
        futures[s−1] = F̂_s, words of length 1 … T − s + 1; each must contain every single token (z,).
    beta : float >= 1
        The box ‖c_s‖_∞ <= β.
    slack_tol : float >= 0
        A prefix is infeasible when the largest absolute chain slack exceeds it. The default 1e-8
        suits exact oracles: with exact rank the optimal slack is 0 up to float64 rounding of
        logits of order 1 (~1e-13 measured); use about the oracle's error for approximate models.
        ``math.inf`` turns the slack test off (a solver failure still counts as infeasible).
    on_infeasible : "uniform" | "raise"
        See :class:`LPSampler`.
    solver_options : dict, optional
        HiGHS options passed to ``cvxpy.Problem.solve`` (default ``DEFAULT_SOLVER_OPTIONS``: dual
        simplex, no presolve); pass ``{}`` for HiGHS's own defaults.

    Returns
    -------
    LPSampler

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(2, 4, 2, generator=0)
    >>> H = [[()], [(0,), (1,)], [(0, 0), (1, 1)]]
    >>> F = [[(0,), (1,), (0, 0)]] * 3 + [[(0,), (1,)]]
    >>> s = lp_sampler(m, H, F)
    >>> 0.5 * (m.distribution() - s.distribution()).abs().sum().item() < 1e-9, s.lp_infeasible
    (True, 0)
    """
    T, V = model.horizon, model.vocab_size
    if T is None:
        raise ValueError("lp_sampler needs a model with a finite horizon; got horizon=None")
    beta = check_real("beta", beta, low=1.0)
    slack_tol = _check_slack_tol(slack_tol)
    if on_infeasible not in ON_INFEASIBLE:
        raise ValueError(f"on_infeasible must be one of {ON_INFEASIBLE}; got {on_infeasible!r}")
    n_levels = max(1, T - 1)
    if len(histories) != n_levels or len(futures) != T:
        raise ValueError(
            f"need histories for levels 1 … max(1, T − 1) = {n_levels} and futures for levels 1 … T = {T}; "
            f"got {len(histories)} history lists and {len(futures)} future lists"
        )
    if [tuple(h) for h in histories[0]] != [()]:
        raise ValueError(f"histories[0] must be [()] (level 1 is the empty history); got {list(histories[0])!r}")
    hats = []
    for s, F in enumerate(futures, start=1):
        F = [tuple(int(z) for z in w) for w in F]
        missing = [z for z in range(V) if (z,) not in F]
        if missing:
            raise ValueError(f"futures[{s - 1}] (F̂_{s}) must contain every single token; missing {missing}")
        bad = [w for w in F if not 1 <= len(w) <= T - s + 1 or min(w) < 0 or max(w) >= V]
        if bad:
            raise ValueError(f"futures[{s - 1}] holds words that do not fit level {s} (length 1 … {T - s + 1}): {bad[:3]}")
        hats.append(F)
    levels = []
    for s in range(1, n_levels + 1):
        H = [tuple(int(z) for z in h) for h in histories[s - 1]]
        if not H or any(len(h) != s - 1 for h in H):
            raise ValueError(f"histories[{s - 1}] must be a non-empty list of tuples of length {s - 1}; got {H!r}")
        tilde = extended_words(hats[s - 1], hats[s] if s < T else [], V)
        rows = word_rows(model, torch.tensor(H, dtype=torch.long).reshape(len(H), s - 1), tilde)
        levels.append(LevelData(H, hats[s - 1], tilde, rows))
    return LPSampler(levels, vocab_size=V, horizon=T, beta=beta, slack_tol=slack_tol,
                     on_infeasible=on_infeasible, solver_options=solver_options)
