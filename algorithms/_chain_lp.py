"""The chain LP of paper B's Reconstruct (§2.3; docs/approx-learner.md, "Reconstruct"), as data and as two solvers.

:class:`Chain` is the read-only view of the stored rows that the LP (and the greedy baseline of
:mod:`logitrank.algorithms._greedy`) reads. For a prefix y_{1:t} the LP is, with split slacks,

    minimise Σ_s Σ_w (p_{s,w} + n_{s,w})
    subject to  P_sᵀ c_s − Q_s[y_{s−1}]ᵀ c_{s−1} − p_s + n_s = 0   (s = 2 … t; c_1 = 1 moves Q_2 to the rhs)
                −β <= c_s <= β,  p, n >= 0,

with P_s = R_s[:, F̂_s] (m_s, |F̂_s|) and Q_s[a] = R_{s−1}[:, a·F̂_s] (m_{s−1}, |F̂_s|). Only the
right-hand side of level 2 and the blocks Q_s[y_{s−1}], s >= 3, depend on the prefix.

Two solvers give the same optimum (tested):

- :class:`HighsChainLP` (default): one ``highspy.Highs`` model per prefix length kept alive between
  solves; a new prefix changes only the level-2 bounds and the coefficients of the Q blocks whose
  token differs from the loaded prefix, and HiGHS restarts from the previous basis.
- :class:`CvxpyChainLP` (the reference): a parameterised cvxpy problem re-bound per prefix and
  solved by HiGHS through cvxpy, from scratch.

Both silence HiGHS: no banner, no log (library code never prints).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = ["DEFAULT_SOLVER_OPTIONS", "LP_SOLVERS", "Chain", "CvxpyChainLP", "HighsChainLP", "quiet_highs", "set_highs_options"]

#: Solvers of the chain LP: "highs" (highspy, model kept alive) and "cvxpy" (the reference path).
LP_SOLVERS = ("highs", "cvxpy")
#: HiGHS options used unless ``solver_options`` is given: dual simplex without presolve. Measured on
#: the longest chain LP of a d = 8 / d = 32, T = 16 sampler through cvxpy (2 shared cores, so ±50%):
#: 7 / 110 ms per solve, against 11 / 183 ms with HiGHS's defaults and 34 / 430 ms with primal simplex.
DEFAULT_SOLVER_OPTIONS = {"presolve": "off", "simplex_strategy": 1}

#: keyword arguments of cvxpy's ``Problem.solve`` (not HiGHS options) that ``solver_options`` may carry
_CVXPY_SOLVE_KEYS = ("verbose", "ignore_dpp", "enforce_dpp", "canon_backend")

_banner_lock = threading.Lock()
_banner_done = False


def quiet_highs() -> None:
    """Swallow the banner HiGHS writes to the process's stdout the first time a solver is created.

    HiGHS prints it from C++ once per process, before any option can be set, so the first
    ``highspy.Highs()`` is built with file descriptor 1 pointed at ``os.devnull`` for the duration of
    the constructor. Every later instance (ours or cvxpy's) prints nothing; our own instances also
    set ``output_flag = False``, and cvxpy's get it through the solver options.
    """
    global _banner_done
    if _banner_done:
        return
    with _banner_lock:
        if _banner_done:
            return
        import highspy

        sys.stdout.flush()
        try:
            fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        except (AttributeError, OSError, ValueError):  # no real stdout (e.g. some notebook kernels)
            fd = 1
        saved = os.dup(fd)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), fd)
                highspy.Highs()
        finally:
            os.dup2(saved, fd)
            os.close(saved)
        _banner_done = True


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Chain:
    """Read-only view of the rows the chain LP reads (levels are 1-based keys).

    Attributes
    ----------
    P : mapping s → (m_s, |F̂_s|) float64 array, s = 2 … L
        R_s on F̂_s.
    Q : mapping s → (V, m_{s−1}, |F̂_s|) float64 array, s = 2 … L
        R_{s−1} on a·F̂_s, one slice per token a.
    Z : mapping t → (V, m_t, V) float64 array or None, t = 1 … L
        R_t on a·z per a (the readout ℓ(z) = Σ_i c_{t,i} R_t[i, y_t·z]); None at t = T.
    root : (V,) float64 array
        L(∅), the logits at t = 0.

    The arrays are not writeable and the mappings are read-only proxies.
    """

    P: Mapping[int, np.ndarray]
    Q: Mapping[int, np.ndarray]
    Z: Mapping[int, np.ndarray | None]
    root: np.ndarray

    @classmethod
    def from_arrays(cls, P: dict, Q: dict, Z: dict, root: np.ndarray) -> Chain:
        fz = lambda d: MappingProxyType({k: (None if v is None else _frozen(v)) for k, v in d.items()})
        return cls(fz(P), fz(Q), fz(Z), _frozen(root))

    def lp_size(self, t: int) -> tuple[int, int]:
        """(coefficient variables, chain equalities) of the LP of prefix length t."""
        return (sum(self.P[s].shape[0] for s in range(2, t + 1)), sum(self.P[s].shape[1] for s in range(2, t + 1)))


def set_highs_options(h, options: Mapping) -> None:
    """Set every HiGHS option of ``options`` on the ``highspy.Highs`` model ``h``; raise ValueError naming
    the first option HiGHS refuses (an unknown name or a value of the wrong type or range)."""
    import highspy

    for name, value in options.items():
        try:
            ok = h.setOptionValue(name, value) == highspy.HighsStatus.kOk
        except Exception:  # noqa: BLE001  (a value of the wrong type raises inside highspy)
            ok = False
        if not ok:
            raise ValueError(f"solver_options[{name!r}] = {value!r} is not a valid HiGHS option "
                             "(unknown name or bad value; see the HiGHS option list)")


class HighsChainLP:
    """The chain LP of prefix length t >= 2 as one live ``highspy.Highs`` model.

    Column layout: for s = 2 … t, [c_s (m_s), p_s (k_s), n_s (k_s)] with k_s = |F̂_s|; row layout: the
    k_s chain equalities of each level in turn. :meth:`solve` loads a prefix by changing the level-2
    row bounds (when y_1 changed) and the coefficients of Q_s[y_{s−1}] (when y_{s−1} changed), then
    re-solves from the previous basis. Should HiGHS not reach an optimum from that basis, the solve
    is repeated once from scratch (``cold_restarts`` counts these; the answer is then the cold one).
    """

    def __init__(self, chain: Chain, t: int, beta: float, options: Mapping):
        import highspy

        quiet_highs()
        self.t, self.chain = t, chain
        h = self.h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        set_highs_options(h, options)
        self.cold_restarts = 0
        self._c0, self._r0 = {}, {}  # s → first column of c_s, first row of level s
        col = row = 0
        lower, upper, cost = [], [], []
        for s in range(2, t + 1):
            m, k = chain.P[s].shape
            self._c0[s], self._r0[s] = col, row
            lower += [-beta] * m + [0.0] * (2 * k)
            upper += [beta] * m + [highspy.kHighsInf] * (2 * k)
            cost += [0.0] * m + [1.0] * (2 * k)
            col, row = col + m + 2 * k, row + k
        self.n_cols, self.n_rows = col, row
        h.addVars(col, np.array(lower), np.array(upper))
        h.changeColsCost(col, np.arange(col, dtype=np.int32), np.array(cost))
        # Rows for the prefix of all-zero tokens; level 2's rhs is R_1[0, 0·F̂_2].
        self.loaded = [0] * (t - 1)  # y_1 … y_{t−1} currently in the model
        for s in range(2, t + 1):
            m, k = chain.P[s].shape
            c, p = self._c0[s], self._c0[s] + m
            rhs = chain.Q[2][0, 0] if s == 2 else np.zeros(k)
            for w in range(k):
                idx = [c + i for i in range(m)] + [p + w, p + k + w]
                val = list(chain.P[s][:, w]) + [-1.0, 1.0]
                if s >= 3:
                    cp_ = self._c0[s - 1]
                    idx += [cp_ + j for j in range(chain.P[s - 1].shape[0])]
                    val += list(-chain.Q[s][0][:, w])
                h.addRow(float(rhs[w]), float(rhs[w]), len(idx), np.array(idx, dtype=np.int32), np.array(val))

    def _load(self, key: tuple) -> None:
        """Change only what differs from the loaded prefix: level-2 bounds and Q_s[y_{s−1}] blocks."""
        h, ch = self.h, self.chain
        if key[0] != self.loaded[0]:
            rhs = ch.Q[2][key[0], 0]  # (k_2,)
            k = rhs.shape[0]
            rows = np.arange(self._r0[2], self._r0[2] + k, dtype=np.int32)
            h.changeRowsBounds(k, rows, rhs, rhs)
        for s in range(3, self.t + 1):
            a = key[s - 2]
            if a == self.loaded[s - 2]:
                continue
            new = ch.Q[s][a]  # (m_{s−1}, k_s)
            old = ch.Q[s][self.loaded[s - 2]]
            r0, c0 = self._r0[s], self._c0[s - 1]
            for j, w in zip(*np.nonzero(new != old)):
                h.changeCoeff(r0 + int(w), c0 + int(j), float(-new[j, w]))
        self.loaded = list(key)

    def solve(self, key: tuple) -> tuple[str, list[np.ndarray] | None]:
        """(status, [c_2 … c_t] or None) for y_{1:t−1} = key."""
        import highspy

        self._load(key)
        h = self.h
        ok = h.run() == highspy.HighsStatus.kOk and h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        if not ok:
            self.cold_restarts += 1
            h.clearSolver()
            ok = h.run() == highspy.HighsStatus.kOk and h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        status = "optimal" if ok else h.modelStatusToString(h.getModelStatus()).lower()
        if not ok:
            return status, None
        x = np.asarray(h.getSolution().col_value, dtype=np.float64)
        return status, [x[self._c0[s] : self._c0[s] + self.chain.P[s].shape[0]].copy() for s in range(2, self.t + 1)]


class CvxpyChainLP:
    """The chain LP of prefix length t >= 2 as a parameterised cvxpy problem (the reference path).

    Standard form with split slacks as in the module docstring, c bounded by variable bounds. The
    prefix-dependent data are cvxpy Parameters, re-bound per prefix; each solve goes through cvxpy's
    canonicalisation to HiGHS from scratch (``warm_start=False``: cvxpy's HiGHS warm start passes the
    previous prefix's solution, and on these problems HiGHS's dual simplex then stops with
    "excessive dual values").
    """

    _SOLVED = ("optimal", "optimal_inaccurate")

    def __init__(self, chain: Chain, t: int, beta: float, options: Mapping):
        import cvxpy as cp
        import highspy

        quiet_highs()
        scratch = highspy.Highs()  # HiGHS checks the options here, not deep inside cvxpy's first solve
        scratch.setOptionValue("output_flag", False)
        set_highs_options(scratch, {k: v for k, v in options.items() if k not in _CVXPY_SOLVE_KEYS})
        self.t, self.chain, self.options = t, chain, {"verbose": False, **options}
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

    def solve(self, key: tuple) -> tuple[str, list[np.ndarray] | None]:
        """(status, [c_2 … c_t] or None) for y_{1:t−1} = key."""
        import cvxpy as cp

        self.b2.value = self.chain.Q[2][key[0], 0]
        for s in range(3, self.t + 1):
            self.Q[s].value = self.chain.Q[s][key[s - 2]]
        try:
            self.problem.solve(solver=cp.HIGHS, warm_start=False, **self.options)
            status = self.problem.status
        except cp.error.SolverError:
            return "solver_error", None
        if status not in self._SOLVED or any(self.c[s].value is None for s in self.c):
            return status, None
        return status, [np.asarray(self.c[s].value, dtype=np.float64) for s in range(2, self.t + 1)]
