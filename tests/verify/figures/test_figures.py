"""Figures 2, 1a and 4 of paper A drawn from a synthetic model (verify/_figures.py)."""

import numpy as np
import pytest

from logitrank.algorithms import (
    avg_kl_to_rank,
    downsized_spectra,
    fit_power_law,
    logit_matrix,
    nonsense_sequences,
    principal_angles,
    random_subspace_angles,
    rank_one_baseline_kl,
    sample_histories_futures,
    top_k_columns,
)
from logitrank.synth import random_isan
from logitrank.verify import plot_kl_to_rank, plot_principal_angles, plot_singular_values


@pytest.fixture(scope="module")
def setting():
    """A random ISAN with d above the number of histories, so every spectrum is full rank."""
    model = random_isan(10, 16, 24, generator=0)
    docs = model.sample(100, generator=1)
    H, F = sample_histories_futures(docs, 24, 24, min_length=3, max_length=7, rng=0)
    return model, H, F


def _check(paths):
    png, pdf = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_all_three_figures_render(setting, tmp_path, capsys):
    model, H, F = setting
    k = 5
    # Figure 2: singular values of the full and downsized matrices, with the fitted α.
    spectra = downsized_spectra(model, H, F, factors=(1, 2, 4), top_k=k)
    s = spectra[1].numpy()
    fit = fit_power_law(s[s > 1e-10 * s[0]])
    _check(plot_singular_values(spectra, tmp_path, fit=fit))
    # Figure 1a: KL to rank r and the rank-1 baseline.
    cols = top_k_columns(model, F, k)
    L = logit_matrix(model, H, F, columns=cols)
    ranks = [1, 2, 4, 8, 16]
    base = rank_one_baseline_kl(L, logit_matrix(model, [()], F, columns=cols)[0], k)
    _check(plot_kl_to_rank(ranks, {"|H| = 24": avg_kl_to_rank(L, ranks, k)}, tmp_path, baseline=base))
    # Figure 4: principal angles, real vs nonsense futures, with the random baseline.
    Fn = nonsense_sequences(F, rng=0)
    Ln = logit_matrix(model, H, Fn, top_k=k)
    angles = {r: principal_angles(L, Ln, r) for r in (2, 5, 10)}
    rand = {r: random_subspace_angles(len(H), r, rng=r) for r in angles}
    _check(plot_principal_angles(angles, tmp_path / "sub", random=rand))
    assert sorted(p.name for p in tmp_path.rglob("*.p*")) == sorted(
        f"{n}.{e}" for n in ("singular_values", "kl_to_rank", "principal_angles") for e in ("png", "pdf")
    )
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda d: plot_singular_values({}, d), ValueError, r"spectra must hold at least one spectrum"),
        (lambda d: plot_singular_values({1: np.ones((2, 2))}, d), ValueError, r"spectra\[1\] must be 1-D; got shape \(2, 2\)"),
        (lambda d: plot_kl_to_rank([1, 2], {"a": [0.1]}, d), ValueError, r"curves\['a'\] must have one value per rank \(2\); got 1"),
        (lambda d: plot_kl_to_rank([1], {}, d), ValueError, r"curves must hold at least one curve"),
        (lambda d: plot_principal_angles({}, d), ValueError, r"angles must hold at least one rank"),
    ],
)
def test_bad_calls(call, exc, pattern, tmp_path):
    with pytest.raises(exc, match=pattern):
        call(tmp_path)
