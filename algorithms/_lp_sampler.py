"""Reconstruct (paper B, §2.3; docs/approx-learner.md, "Reconstruct"): the joint LP over the chain of coefficients, and the
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
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from logitrank._tokens import as_token_list
from logitrank._validation import check_int, check_model, check_real
from logitrank.synth import MAX_ENUMERATION, LanguageModel, LogitModel, all_sequences

from ._chain_lp import DEFAULT_SOLVER_OPTIONS, LP_SOLVERS, Chain, CvxpyChainLP, HighsChainLP
from ._dist_spanner import word_rows
from ._lp_parts import (  # noqa: F401
    _CVXPY_SOLVE_KEYS,
    ON_INFEASIBLE,
    InfeasibleLPError,
    LevelData,
    Reconstruction,
    UniformFallbackWarning,
    Word,
    _check_slack_tol,
    _check_solver,
    _check_solver_options,
    extended_words,
)

__all__ = [
    "LP_SOLVERS",
    "Chain",
    "InfeasibleLPError",
    "LPSampler",
    "LevelData",
    "Reconstruction",
    "UniformFallbackWarning",
    "extended_words",
    "lp_sampler",
]

_SOLVER_CLASSES = {"highs": HighsChainLP, "cvxpy": CvxpyChainLP}


class LPSampler(LogitModel):
    """The learned model of paper B: next-token logits from the joint chain LP (docs/approx-learner.md, "Reconstruct").

    A :class:`logitrank.synth.LanguageModel` (``logits``, ``log_probs``, ``sample``, ``log_prob``) plus
    ``distribution()`` by enumeration, so TV to the truth is computed exactly for small V**T or with
    :func:`logitrank.verify.tv_monte_carlo`. Build it with :func:`lp_sampler` (from spanner histories and
    futures) or get it from :func:`logitrank.algorithms.learn_approx`.

    Each prefix length t >= 2 has one LP whose prefix-dependent data are R_1[0, y_1·F̂_2] and
    R_{s−1}[:, y_{s−1}·F̂_s]; ``solver="highs"`` keeps one live HiGHS model per t and changes only
    those data (:class:`~logitrank.algorithms._chain_lp.HighsChainLP`), ``solver="cvxpy"`` re-binds
    the Parameters of a cvxpy problem and solves from scratch (the reference path; same optimum).
    Solutions are memoised per y_{1:t−1}. The rows the LP reads are available read-only as
    :attr:`chain`.

    [choice] Infeasible prefixes (max slack above ``slack_tol`` or no solver solution): with
    ``on_infeasible="uniform"`` (the restatement's choice) every later token of that sequence is uniform
    — logits at a prefix are zero when the LP of it or of any shorter prefix failed, which keeps
    ``sample``, ``log_prob`` and ``distribution`` one consistent distribution — and the event is
    counted in ``lp_infeasible`` and ``fallback_prefixes`` and announced by a
    :class:`UniformFallbackWarning` (once per call that meets new fallback prefixes); with
    ``"raise"`` an :class:`InfeasibleLPError` carrying the solver status is raised.

    Attributes
    ----------
    vocab_size, horizon : int
    beta, slack_tol : float
    levels : list of LevelData, levels 1 … max(1, T − 1)
    lp_solves, lp_infeasible, fallback_prefixes : int
        Distinct LPs solved, those found infeasible, distinct prefixes answered by the fallback.
    lp_seconds : float
        Total wall time of the LP solves (loading the prefix included).
    solver : "highs" | "cvxpy"
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
        solver: str = "highs",
    ):
        self.vocab_size, self.horizon = vocab_size, horizon
        self.solver = _check_solver(solver)
        self.device, self.dtype = torch.device("cpu"), torch.float64
        self.beta, self.slack_tol, self.on_infeasible = beta, slack_tol, on_infeasible
        self.solver_options = dict(DEFAULT_SOLVER_OPTIONS if solver_options is None else solver_options)
        self.levels = list(levels)
        self._chain = self._build_chain()
        self._problems: dict = {}  # t → HighsChainLP | CvxpyChainLP
        self._solutions: dict[tuple, Reconstruction] = {}  # y_{1:t−1} → LP answer (coefficients only)
        self._states: dict[tuple, np.ndarray | None] = {}  # y_{1:t−1} → c_t, or None after a failure
        self.lp_solves = self.lp_infeasible = self.fallback_prefixes = 0
        self.lp_seconds = 0.0
        self._fallback_seen: set = set()

    def __repr__(self) -> str:
        sizes = [len(L.histories) for L in self.levels]
        return f"LPSampler(vocab_size={self.vocab_size}, horizon={self.horizon}, beta={self.beta}, spanner sizes={sizes})"

    # -- structure -------------------------------------------------------------------------------
    @property
    def chain(self) -> Chain:
        """The rows the chain LP reads (P, Q, Z, root), as a read-only :class:`Chain`."""
        return self._chain

    def _build_chain(self) -> Chain:
        V = self.vocab_size
        P, Q, Z = {}, {}, {}
        pos = [{w: j for j, w in enumerate(L.tilde)} for L in self.levels]
        R = [L.rows.detach().to("cpu", torch.float64).numpy() for L in self.levels]
        root = R[0][0, [pos[0][(z,)] for z in range(V)]]  # (V,)
        for s in range(1, len(self.levels) + 1):
            i = s - 1
            Z[s] = np.stack([R[i][:, [pos[i][(a, z)] for z in range(V)]] for a in range(V)]) if s < self.horizon else None
            if s >= 2:
                hat = self.levels[i].hat
                P[s] = R[i][:, [pos[i][w] for w in hat]]  # (m_s, |F̂_s|)
                Q[s] = np.stack([R[i - 1][:, [pos[i - 1][(a,) + w] for w in hat]] for a in range(V)])  # (V, m_{s−1}, |F̂_s|)
        return Chain.from_arrays(P, Q, Z, root)

    @property
    def lp_cold_restarts(self) -> int:
        """Solves that HiGHS could not finish from the previous basis and redid from scratch (highs path)."""
        return sum(getattr(lp, "cold_restarts", 0) for lp in self._problems.values())

    @property
    def spanner_sizes(self) -> list[int]:
        """m_s for s = 1 … T − 1."""
        return [len(L.histories) for L in self.levels]

    def lp_size(self, t: int) -> tuple[int, int]:
        """(coefficient variables, chain equalities) of the LP of prefix length t (before slack splitting)."""
        t = check_int("t", t, minimum=1, maximum=max(1, self.horizon - 1))
        return self._chain.lp_size(t)

    # -- the LP ----------------------------------------------------------------------------------
    def _solve(self, key: tuple) -> Reconstruction:
        """The chain LP for y_{1:t−1} = key (t = len(key) + 1 >= 2), memoised."""
        hit = self._solutions.get(key)
        if hit is not None:
            return hit
        t, ch = len(key) + 1, self._chain
        lp = self._problems.get(t)
        if lp is None:
            lp = self._problems[t] = _SOLVER_CLASSES[self.solver](ch, t, self.beta, self.solver_options)
        start = time.perf_counter()
        status, chain_coefs = lp.solve(key)
        seconds = time.perf_counter() - start
        self.lp_solves += 1
        self.lp_seconds += seconds
        coefs = None
        slack_total = slack_max = float("nan")
        if chain_coefs is not None:
            coefs = [np.ones(1)] + chain_coefs
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
        """Reconstruct(y_{1:t}) of the restatement: c_1 … c_t and the next-token logits at y_{1:t}.

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
            return out + torch.tensor(self._chain.root)
        Z = self._chain.Z[t]  # (V, m_t, V)
        new_fallbacks = 0
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
                    new_fallbacks += 1
                continue  # zero logits: the uniform fallback
            out[i] = torch.from_numpy(Z[row[-1]].T @ c)
        if new_fallbacks:
            warnings.warn(
                f"LPSampler: {new_fallbacks} new prefix(es) of length {t} answered with uniform next tokens "
                f"because their chain LP was infeasible (slack_tol={self.slack_tol:.3g}); "
                f"{self.fallback_prefixes} so far. See fallback_prefixes and lp_infeasible.",
                UniformFallbackWarning, stacklevel=3,
            )
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


def lp_sampler(
    model: LanguageModel,
    histories: Sequence[Sequence[Word]],
    futures: Sequence[Sequence[Word]],
    *,
    beta: float = 2.0,
    slack_tol: float = 1e-8,
    on_infeasible: str = "uniform",
    solver_options: dict | None = None,
    solver: str = "highs",
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
        HiGHS options (default ``DEFAULT_SOLVER_OPTIONS``: dual simplex, no presolve); pass ``{}``
        for HiGHS's own defaults. Set on the live model (``solver="highs"``) or passed to
        ``cvxpy.Problem.solve`` (``solver="cvxpy"``).
    solver : "highs" | "cvxpy"
        How each chain LP is solved: one live ``highspy`` model per prefix length, changed in
        place per prefix (default, about 10× faster), or the parameterised cvxpy problem (the
        reference; same optimum within HiGHS's tolerances, tested).

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
    check_model("model", model, needs=("vocab_size", "horizon", "logits"))
    T, V = model.horizon, model.vocab_size
    if T is None:
        raise ValueError("lp_sampler needs a model with a finite horizon; got horizon=None")
    beta = check_real("beta", beta, low=1.0)
    slack_tol = _check_slack_tol(slack_tol)
    solver = _check_solver(solver)
    solver_options = _check_solver_options(solver_options, solver)
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
        F = as_token_list(f"futures[{s - 1}]", F, V)
        missing = [z for z in range(V) if (z,) not in F]
        if missing:
            raise ValueError(f"futures[{s - 1}] (F̂_{s}) must contain every single token; missing {missing}")
        bad = [w for w in F if not 1 <= len(w) <= T - s + 1 or min(w) < 0 or max(w) >= V]
        if bad:
            raise ValueError(f"futures[{s - 1}] holds words that do not fit level {s} (length 1 … {T - s + 1}): {bad[:3]}")
        hats.append(F)
    levels = []
    for s in range(1, n_levels + 1):
        H = as_token_list(f"histories[{s - 1}]", histories[s - 1], V)
        if not H or any(len(h) != s - 1 for h in H):
            raise ValueError(f"histories[{s - 1}] must be a non-empty list of tuples of length {s - 1}; got {H!r}")
        tilde = extended_words(hats[s - 1], hats[s] if s < T else [], V)
        rows = word_rows(model, torch.tensor(H, dtype=torch.long).reshape(len(H), s - 1), tilde)
        levels.append(LevelData(H, hats[s - 1], tilde, rows))
    return LPSampler(levels, vocab_size=V, horizon=T, beta=beta, slack_tol=slack_tol,
                     on_infeasible=on_infeasible, solver_options=solver_options, solver=solver)
