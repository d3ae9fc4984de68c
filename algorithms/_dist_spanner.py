"""DistSpanner (paper B, §2.2; docs/approx-learner.md, "DistSpanner(s)"): a barycentric spanner of sampled history rows.

Words. Paper B scores a *future* w = f·z (a token string f, then one scored token z); its entry at a
history h is L(h∘f)[z], the column (f, z) of the extended logit matrix (paper A, Definition 2.2).
Words are int tuples of length >= 1 here; the last token is the scored one. Level s (s = 1 … T)
holds histories of length s − 1, so a word w fits level s when (s − 1) + |w| − 1 <= T − 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from logitrank._validation import as_generator, check_int, check_model, check_real, check_tokens
from logitrank.synth import LanguageModel

from ._spanner import COEF_TOL, Spanner, _project, barycentric_spanner

__all__ = ["DistSpanner", "dist_spanner", "word_rows"]

Word = tuple[int, ...]

#: A held-out row farther than this (relative to its norm) from the span of an uncapped basis shows a
#: direction the spanner sample missed. √eps(float64) ≈ 1.5e-8 lies far above the κ·eps rounding of a
#: projection onto a well-conditioned basis and far below any real direction of the models tested.
NEW_DIRECTION_RTOL = float(np.sqrt(np.finfo(np.float64).eps))


def word_rows(model: LanguageModel, histories: torch.Tensor, words: Sequence[Word]) -> torch.Tensor:
    """Entries of ``words`` at ``histories``: (n, t) LongTensor → (n, |words|) float64 tensor.

    Entry [i, j] = L(h_i ∘ f_j)[z_j] for w_j = f_j·z_j. Words sharing a prefix f share one batched
    ``model.logits`` call of n prefixes, so the call count is the number of distinct f.

    Examples
    --------
    >>> import torch
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 4, 2, generator=0)
    >>> H = torch.tensor([[0], [2]])
    >>> R = word_rows(m, H, [(1,), (0, 2)])
    >>> bool(torch.allclose(R[:, 1], m.logits(torch.tensor([[0, 0], [2, 0]]))[:, 2].double()))
    True
    """
    n = histories.shape[0]
    out = torch.empty(n, len(words), dtype=torch.float64)
    groups: dict[Word, list[tuple[int, int]]] = defaultdict(list)
    for j, w in enumerate(words):
        groups[tuple(w[:-1])].append((j, w[-1]))
    for f, cols in groups.items():
        tail = torch.tensor(f, dtype=torch.long).expand(n, len(f))  # (n, |f|)
        L = model.logits(torch.cat([histories, tail], dim=1)).to(torch.float64)  # (n, V)
        idx = torch.tensor([j for j, _ in cols])
        out[:, idx] = L[:, torch.tensor([z for _, z in cols])].cpu()
    return out


@dataclass(frozen=True)
class DistSpanner:
    """A distributional barycentric spanner of one level (returned by :func:`dist_spanner`).

    Attributes
    ----------
    level : int
        s; the histories have length s − 1.
    histories : list of token tuples, length m
        The basis histories h_{s,1} … h_{s,m}.
    rows : (m, |words|) float64 tensor
        Their stored rows R_s[i, w].
    words : list of words
        The columns (the restatement's F̃_s when called by the learner).
    spanner : Spanner
        The spanner of the distinct sampled rows (coefficients, swaps, numerical rank).
    miss_rate : float
        η: the fraction of held-out sampled histories (with multiplicity) whose row is not written
        over the basis with coefficients in [−β(1+coef_tol), β(1+coef_tol)] — or, when the basis was
        not capped by ``rank``, lies farther than ``NEW_DIRECTION_RTOL`` (relative) from its span (a
        direction the sample missed). With a cap the residual is expected and reported separately.
    heldout_residual : float
        Largest relative distance ‖x − proj x‖ / ‖x‖ of a held-out row from the span of the basis
        (nonzero for approximately low-rank models, where the cap leaves a residual).
    n_sampled, n_heldout : int
        Distinct histories in the spanner sample and in the held-out sample.
    """

    level: int
    histories: list
    rows: torch.Tensor
    words: list
    spanner: Spanner
    miss_rate: float
    heldout_residual: float
    n_sampled: int
    n_heldout: int

    @property
    def size(self) -> int:
        """m_s, the number of basis histories."""
        return len(self.histories)


def _level_histories(samples: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct length-(level−1) prefixes of (N, ≥ level−1) samples, sorted, and their counts."""
    if level == 1:
        return torch.zeros(1, 0, dtype=torch.long), torch.tensor([samples.shape[0]])
    return torch.unique(samples[:, : level - 1].cpu(), dim=0, return_counts=True)


def dist_spanner(
    model: LanguageModel,
    level: int,
    words: Sequence[Word],
    *,
    n_histories: int = 64,
    n_heldout: int = 64,
    beta: float = 2.0,
    rank: int | None = None,
    tol: float | None = None,
    coef_tol: float = COEF_TOL,
    generator=None,
    samples: torch.Tensor | None = None,
    heldout: torch.Tensor | None = None,
) -> DistSpanner:
    """DistSpanner(s) of the approximate-rank learner (paper B, §2.2; docs/approx-learner.md, "DistSpanner(s)").

    Steps (numbered as in the restatement (docs/approx-learner.md)):

    1. Histories of length s − 1: the prefixes of ``n_histories`` fresh samples of the model (or of
       the given ``samples``); their rows on ``words`` are queried (distinct histories once).
    2–3. :func:`barycentric_spanner` of those rows with constant β, capped at ``rank`` rows.
    4. The basis histories and their rows; ``n_heldout`` further samples (or ``heldout``) estimate
       the miss rate η (see :class:`DistSpanner`).

    [choice] The learner passes one batch of samples to every level (``samples=``), so each level's
    histories are still i.i.d. prefixes of the model while the sample count does not grow with T.

    Parameters
    ----------
    model : LanguageModel with horizon T
        Queried for logits and (unless ``samples`` and ``heldout`` are given) samples.
    level : int in [1, T]
        s; histories have length s − 1.
    words : sequence of int tuples
        The columns; each must fit the level: 1 <= |w| <= T − s + 1.
    n_histories, n_heldout : int >= 1
        Samples drawn for the spanner and for η (ignored where ``samples`` / ``heldout`` are given).
    beta, rank, tol, coef_tol :
        As in :func:`barycentric_spanner`.
    generator : torch.Generator or int, optional
        Needed only when samples are drawn.
    samples, heldout : (N, ≥ s − 1) LongTensor, optional
        Pre-drawn sequences whose prefixes serve as the spanner sample / the held-out sample.

    Returns
    -------
    DistSpanner

    Examples
    --------
    >>> from logitrank.synth import random_isan
    >>> m = random_isan(3, 5, 3, generator=0)
    >>> words = [(z,) for z in range(3)] + [(a, z) for a in range(3) for z in range(3)]
    >>> ds = dist_spanner(m, 3, words, n_histories=40, n_heldout=40, generator=0)
    >>> ds.size, ds.miss_rate, ds.spanner.max_coefficient <= 2.0 + 1e-9
    (3, 0.0, True)
    """
    check_model("model", model, needs=("vocab_size", "horizon", "logits"))
    T = model.horizon
    if T is None:
        raise ValueError("dist_spanner needs a model with a finite horizon; got horizon=None")
    V = model.vocab_size
    level = check_int("level", level, minimum=1, maximum=T)
    words = [tuple(int(z) for z in w) for w in words]
    for w in words:
        if not 1 <= len(w) <= T - level + 1 or min(w) < 0 or max(w) >= V:
            raise ValueError(
                f"words must be token tuples of length 1 … T − level + 1 = {T - level + 1} with ids in "
                f"[0, {V}); got {w!r} at level {level}"
            )
    n_histories = check_int("n_histories", n_histories, minimum=1)
    n_heldout = check_int("n_heldout", n_heldout, minimum=1)
    beta = check_real("beta", beta, low=1.0)
    device = torch.device(getattr(model, "device", "cpu"))
    if samples is None or heldout is None:
        if generator is None:
            raise TypeError("dist_spanner draws samples, so it needs generator= (a torch.Generator or an int seed)")
        gen = as_generator(generator, device)
    if samples is None:
        samples = model.sample(n_histories, generator=gen)  # (N, T)
    if heldout is None:
        heldout = model.sample(n_heldout, generator=gen)  # (N', T)
    checked = []
    for name, s in (("samples", samples), ("heldout", heldout)):
        s = check_tokens(name, s, vocab_size=V, device=torch.device("cpu"))  # (N, ≥ s − 1), on the CPU
        if s.shape[1] < level - 1:
            raise ValueError(f"{name} must have length >= level − 1 = {level - 1}; got length {s.shape[1]}")
        checked.append(s)
    samples, heldout = checked
    # 1. Distinct sampled histories and their rows.
    H, _ = _level_histories(samples, level)
    rows = word_rows(model, H.to(device), words)  # (n, |words|)
    # 2–3. The spanner.
    sp = barycentric_spanner(rows, beta, rank=rank, tol=tol, coef_tol=coef_tol)
    basis = sp.indices
    histories = [tuple(H[i].tolist()) for i in basis.tolist()]
    basis_rows = rows[basis]  # (m, |words|)
    # 4. Held-out miss rate, weighted by multiplicity.
    Hh, counts = _level_histories(heldout, level)
    rows_h = word_rows(model, Hh.to(device), words).numpy()  # (n', |words|)
    norms = np.linalg.norm(rows_h, axis=1)
    if sp.size:
        coef, resid, _ = _project(rows_h, basis_rows.numpy())
        too_big = np.abs(coef).max(axis=1) > beta * (1 + coef_tol)
    else:
        resid, too_big = norms, np.zeros(len(norms), dtype=bool)
    capped = sp.numerical_rank > sp.size
    rel = np.where(norms > 0, resid / np.where(norms > 0, norms, 1.0), 0.0)  # (n',)
    missed = too_big | (~capped & (rel > NEW_DIRECTION_RTOL))
    w = counts.numpy().astype(np.float64)
    return DistSpanner(
        level=level,
        histories=histories,
        rows=basis_rows,
        words=words,
        spanner=sp,
        miss_rate=float((w * missed).sum() / w.sum()),
        heldout_residual=float(rel.max()) if rel.size else 0.0,
        n_sampled=int(H.shape[0]),
        n_heldout=int(Hh.shape[0]),
    )
