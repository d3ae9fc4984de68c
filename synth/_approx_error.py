"""A sampled estimate of ε_avg at rank r, as defined for paper B's approximate learner (restated in
``docs/approx-learner.md``, "Setting")."""

from __future__ import annotations

import torch

from logitrank._validation import as_generator, check_int

from ._protocol import LanguageModel

__all__ = ["approx_rank_error"]


# -- the ε_avg estimate -------------------------------------------------------------------------
def approx_rank_error(
    model: LanguageModel,
    rank: int,
    *,
    n_histories: int = 64,
    n_futures: int = 64,
    generator,
) -> torch.Tensor:
    """Sampled estimate of the per-level ε_avg at rank r (approximate-learner spec, "Setting").

    For each level s = t + 1 (histories of length t = 0 … T−1) it builds one sampled logit matrix
    and reports the average absolute entry error of its best rank-r approximation:

    1. Histories (rows). t = 0: the empty history (level 1 has only it). t >= 1: the first t − 1
       tokens of a sample of ``model`` followed by a uniform token; ``n_histories`` rows.
    2. Futures. ``n_futures`` strings f: for each, a fresh sample y of the model and a length k
       uniform on {0, …, T − t − 1}; f = y_{t+1 : t+k}, the k tokens that follow position t in y
       (a continuation of the model). Every history is paired with every future.
    3. Scored tokens. All V tokens of each future are kept, so the average over columns is the
       average over a uniform scored token. The matrix is (n_histories, n_futures·V), entry
       [i, j·V + z] = L(h_i ∘ f_j)[z], the mean-centred logit, from ``model.logits`` calls.
    4. Error. L_r = the rank-r truncated SVD of that matrix (float64); the entry is
       mean |L − L_r| over all its entries (0 when r >= min(rows, columns)).

    This is an estimate in two ways: the matrix is a sample of the restatement's average, and the
    truncated SVD minimises the squared (not the absolute) error, so the value is an upper bound on
    the best rank-r average absolute error *of the sampled matrix* and is always <= its root-mean-square
    counterpart. The restatement's ε_avg at rank r is the maximum over levels, ``out.max()``. One batch of
    ``n_histories`` samples and one of ``n_futures`` samples serve every level.

    Parameters
    ----------
    model : LanguageModel with a finite horizon T
    rank : int >= 0
    n_histories, n_futures : int >= 1
    generator : torch.Generator on the model's device, or an int seed

    Returns
    -------
    (T,) float64 tensor
        Entry t is the estimate for histories of length t.

    Examples
    --------
    >>> from logitrank.synth import perturbed, random_isan
    >>> m = random_isan(3, 5, 2, generator=0)
    >>> bool(approx_rank_error(m, 2, generator=0).max() < 1e-12)      # exact rank 2
    True
    >>> bool(approx_rank_error(perturbed(m, 0.1, generator=0), 2, generator=0).max() > 1e-3)
    True
    """
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must follow the synth.LanguageModel protocol; got {type(model).__name__}")
    T = model.horizon
    if T is None:
        raise ValueError("approx_rank_error needs a model with a finite horizon; got horizon=None")
    rank = check_int("rank", rank, minimum=0)
    n_h = check_int("n_histories", n_histories, minimum=1)
    n_f = check_int("n_futures", n_futures, minimum=1)
    V = model.vocab_size
    device = torch.device(getattr(model, "device", "cpu"))
    gen = as_generator(generator, device)
    # Shared draws: history samples, their uniform last tokens, future samples and future lengths.
    hist = model.sample(n_h, generator=gen)  # (n_h, T)
    last = torch.randint(0, V, (n_h, T), generator=gen, device=device)  # (n_h, T)
    fut = model.sample(n_f, generator=gen)  # (n_f, T)
    u = torch.rand(n_f, T, generator=gen, device=device, dtype=torch.float64)  # for the lengths
    out = torch.zeros(T, dtype=torch.float64)
    for t in range(T):
        # 1. Histories of length t.
        if t == 0:
            H = torch.zeros(1, 0, dtype=torch.long, device=device)
        else:
            H = torch.cat([hist[:, : t - 1], last[:, t - 1 : t]], dim=1)  # (n_h, t)
        # 2. Futures: lengths uniform on {0, …, T−t−1}.
        lengths = (u[:, t] * (T - t)).long().clamp(max=T - t - 1)  # (n_f,)
        L = torch.empty(H.shape[0], n_f, V, dtype=torch.float64, device=device)
        # 3. One model.logits call per future length: (n_h·m, t + k) prefixes.
        for k in lengths.unique().tolist():
            cols = (lengths == k).nonzero().squeeze(1)  # (m,)
            F = fut[cols, t : t + k]  # (m, k)
            m = cols.numel()
            prefixes = torch.cat(
                [H.unsqueeze(1).expand(-1, m, -1), F.unsqueeze(0).expand(H.shape[0], -1, -1)], dim=2
            ).reshape(H.shape[0] * m, t + k)  # (n_h·m, t+k), history-major
            L[:, cols] = model.logits(prefixes).to(torch.float64).reshape(H.shape[0], m, V)
        L = L.reshape(H.shape[0], n_f * V)  # (n_h, n_f·V), future-major columns
        # 4. Truncated SVD error.
        if rank < min(L.shape):
            U_, S_, Vh = torch.linalg.svd(L, full_matrices=False)
            L_r = (U_[:, :rank] * S_[:rank]) @ Vh[:rank]  # (n_h, n_f·V)
            out[t] = (L - L_r).abs().mean().cpu()
    return out
