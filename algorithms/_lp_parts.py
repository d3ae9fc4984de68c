"""The pieces the LP sampler is built from (paper B, §2.3; docs/approx-learner.md, "Reconstruct"): a
level's stored rows, one prefix's LP answer, the extended future set F̃_s, the settings' checks, and
the two ways an infeasible LP shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from logitrank._validation import check_real

from ._chain_lp import LP_SOLVERS, quiet_highs, set_highs_options

__all__ = ["ON_INFEASIBLE", "InfeasibleLPError", "LevelData", "Reconstruction", "UniformFallbackWarning", "Word", "extended_words"]


Word = tuple[int, ...]


ON_INFEASIBLE = ("uniform", "raise")


class UniformFallbackWarning(RuntimeWarning):
    """An LPSampler answered a prefix with uniform tokens because its chain LP was infeasible."""


def _check_solver(value) -> str:
    if value not in LP_SOLVERS:
        raise ValueError(f"solver must be one of {LP_SOLVERS}; got {value!r}")
    return value


_CVXPY_SOLVE_KEYS = ("verbose", "ignore_dpp", "enforce_dpp", "canon_backend")


def _check_solver_options(value, solver: str) -> dict | None:
    """None, or a dict of HiGHS option names to values that HiGHS accepts (checked on a scratch model)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"solver_options must be a dict of HiGHS option names to values; got {value!r}")
    import highspy

    quiet_highs()  # the first Highs() of a process prints a banner to fd 1
    scratch = highspy.Highs()
    scratch.setOptionValue("output_flag", False)
    # cvxpy's own solve keywords are not HiGHS options: the rest must be, with the chain LP's own check
    set_highs_options(scratch, {k: v for k, v in value.items() if not (solver == "cvxpy" and k in _CVXPY_SOLVE_KEYS)})
    return value


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
        The solver's status ("optimal" when the solver succeeded but the slack is too large,
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
    """What the learner stores for one level s (docs/approx-learner.md, "State the learner keeps, per level s").

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
        Solver status ("optimal" on success; "trivial" for t = 1, where no LP is needed).
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
