"""The greedy one-step baseline that paper B's joint LP replaces (§2.3; docs/approx-learner.md, "Why a joint LP").

Instead of re-solving the whole chain, the baseline composes one-step least-squares maps:
c_1 = e_1 and c_s = M_s^{(y_{s−1})} c_{s−1}, where

    M_s^{(a)} = argmin_X ‖R_s[:, F̂_s]ᵀ X − R_{s−1}[:, a·F̂_s]ᵀ‖_F        (minimum-norm solution)

maps the level-(s−1) coefficients of a prefix to level-s coefficients after token a. Nothing bounds
the coefficients; paper B argues that they can grow geometrically in t while the LP's stay in the
box ‖c_s‖_∞ <= β (claim B3). With exact rank and futures that resolve it, both return the unique
coordinates of the prefix's row, so the two samplers coincide.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from logitrank.synth import MAX_ENUMERATION, LogitModel

from ._lp_sampler import LPSampler

__all__ = ["GreedySampler", "greedy_coefficients", "greedy_maps", "greedy_sampler"]


#: sampler → its maps; weak keys, so the memo never keeps a sampler alive nor touches its attributes.
_MAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def greedy_maps(sampler: LPSampler) -> dict[int, np.ndarray]:
    """M_s^{(a)} for s = 2 … T − 1 from the sampler's stored rows (its read-only :attr:`LPSampler.chain`):
    s → (V, m_s, m_{s−1}), memoised per sampler."""
    maps = _MAPS.get(sampler)
    if maps is None:
        ch, maps = sampler.chain, {}
        for s in ch.P:
            sol = [np.linalg.lstsq(ch.P[s].T, ch.Q[s][a].T, rcond=None)[0] for a in range(sampler.vocab_size)]
            maps[s] = np.stack(sol)  # (V, m_s, m_{s−1})
        _MAPS[sampler] = maps
    return maps


def greedy_coefficients(sampler: LPSampler, prefix) -> list[torch.Tensor]:
    """c_1 … c_t of the greedy baseline for y_{1:t}: c_s = M_s^{(y_{s−1})} c_{s−1}.

    Parameters
    ----------
    sampler : LPSampler
        Supplies the stored rows R_s and futures F̂_s.
    prefix : sequence of t ints, 1 <= t <= T − 1

    Returns
    -------
    list of t (m_s,) float64 tensors
    """
    if not isinstance(sampler, LPSampler):
        raise TypeError(f"sampler must be an LPSampler; got {type(sampler).__name__}")
    y = tuple(int(z) for z in prefix)
    if not 1 <= len(y) <= sampler.horizon - 1:
        raise ValueError(f"prefix must have length 1 … T − 1 = {sampler.horizon - 1}; got length {len(y)}")
    maps = greedy_maps(sampler)
    c = [np.ones(1)]
    for s in range(2, len(y) + 1):
        c.append(maps[s][y[s - 2]] @ c[-1])  # (m_s,)
    return [torch.from_numpy(v) for v in c]


class GreedySampler(LogitModel):
    """The greedy baseline as a :class:`logitrank.synth.LanguageModel`: ℓ(z) = Σ_i c^greedy_{t,i} R_t[i, y_t·z]."""

    def __init__(self, sampler: LPSampler):
        self.sampler = sampler
        self.vocab_size, self.horizon = sampler.vocab_size, sampler.horizon
        self.device, self.dtype = torch.device("cpu"), torch.float64

    def __repr__(self) -> str:
        return f"GreedySampler({self.sampler!r})"

    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        n, t = prefixes.shape
        ch = self.sampler.chain
        if t == 0:
            return torch.tensor(ch.root).expand(n, -1).clone()
        out = torch.empty(n, self.vocab_size, dtype=torch.float64)
        for i, row in enumerate(prefixes.tolist()):
            c = greedy_coefficients(self.sampler, row)[-1].numpy()  # (m_t,)
            out[i] = torch.from_numpy(ch.Z[t][row[-1]].T @ c)
        return out

    def distribution(self, *, max_sequences: int = MAX_ENUMERATION) -> torch.Tensor:
        """Exact probabilities of all V**T sequences, as :meth:`LPSampler.distribution`."""
        return LPSampler.distribution(self, max_sequences=max_sequences)


def greedy_sampler(sampler: LPSampler) -> GreedySampler:
    """The greedy one-step baseline built on the same spanner rows as ``sampler`` (claim B3).

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> from logitrank.algorithms import lp_sampler
    >>> m = random_isan(2, 4, 2, generator=0)
    >>> H = [[()], [(0,), (1,)], [(0, 0), (1, 1)]]
    >>> F = [[(0,), (1,), (0, 0)]] * 3 + [[(0,), (1,)]]
    >>> g = greedy_sampler(lp_sampler(m, H, F))
    >>> bool((g.distribution() - m.distribution()).abs().max() < 1e-10)
    True
    """
    if not isinstance(sampler, LPSampler):
        raise TypeError(f"sampler must be an LPSampler; got {type(sampler).__name__}")
    return GreedySampler(sampler)
