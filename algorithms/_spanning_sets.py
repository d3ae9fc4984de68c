"""The spanning sets of paper A's learner (Algorithm 2, lines 2–3) and its two refusals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["IncompleteSpanError", "RankExceededError", "SpanningSets", "Word"]

Word = tuple[int, ...]


class RankExceededError(RuntimeError):
    """The learner found more independent histories at some level than ``max_rank`` allows."""

    def __init__(self, level: int, found: int, max_rank: int):
        self.level, self.found, self.max_rank = level, found, max_rank
        super().__init__(
            f"level t={level} needs at least {found} spanning histories (the learned ISAN would have hidden "
            f"dim >= {found}), more than max_rank={max_rank}: "
            f"the model's logit rank exceeds max_rank (or rank_tol is too small for the oracle's noise). "
            f"Raise max_rank, or raise rank_tol if the oracle is noisy."
        )


class IncompleteSpanError(RuntimeError):
    """CompleteSpan still found new directions after ``max_rounds`` rounds."""


@dataclass
class SpanningSets:
    """Histories H_t and futures F_t for t = 0 … T−1 (paper A, Algorithm 2, lines 2–3), plus a log.

    Attributes
    ----------
    histories : list of T lists of token tuples; histories[t] ⊂ Σ^t
    futures : list of T lists of token tuples; futures[t] words of length <= T−1−t
    rounds : iterations of Algorithm 3's while-loop, the last (clean) one included
    additions : (round, t, h, f) for every pair added, in order
    """

    histories: list[list[Word]]
    futures: list[list[Word]]
    rounds: int = 0
    additions: list[tuple[int, int, Word, Word | None]] = field(default_factory=list)
    #: Smallest (residual of an accepted history) / (rank tolerance) over all additions: how far the
    #: weakest direction kept stood above the threshold. Near 1 the decision was a coin flip, which
    #: is what oracle noise at the tolerance looks like.
    min_margin: float = float("inf")
    #: Sketch picks (block path) that the full columns did not confirm; 0 for exact logits.
    sketch_rejections: int = 0
    #: The block path's level caches (a ``SpanQueries``), reused by ``learn_isan`` to build the ISAN.
    block_cache: Any = None

    @classmethod
    def initial(cls, horizon: int, token: int = 0) -> SpanningSets:
        """H_t = {y^t} for a fixed token y and F_t = {Null} (Algorithm 2, lines 2–3)."""
        return cls([[(token,) * t] for t in range(horizon)], [[()] for _ in range(horizon)])
