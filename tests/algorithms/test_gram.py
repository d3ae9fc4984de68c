"""The Gram path (algorithms/_gram.py): spectra of L_{M,k}(H, F) without materialising it."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from logitrank.algorithms import (
    Spectrum,
    downsized_spectra,
    gram_matrix,
    gram_spectrum,
    logit_matrix,
    logit_spectrum,
    lowrank_spectrum,
    principal_angles,
)
from logitrank.algorithms._gram import _future_blocks
from logitrank.synth import random_isan
from logitrank.synth.strategies import isans

# float results compared across code paths: .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def _sets(model, seed, n=12, m=9):
    T = model.horizon
    seqs = model.sample(n + m, generator=seed).tolist()
    t = T // 2
    H = [tuple(s[:t]) for s in seqs[:n]]
    F = [tuple(s[: i % (T - t)]) for i, s in enumerate(seqs[n:])]
    return H, F


@given(isans(min_horizon=2, max_horizon=6, max_vocab_size=5), st.integers(0, 10**6), st.sampled_from([None, 2]))
def test_gram_singular_values_equal_dense_svd(model, seed, k):
    """Weyl: eigenvalues of the float64 Gram move by at most ‖ΔG‖₂ ≈ eps·M·σ₁² (M ≤ 50 columns
    here), so |σ̂_i² − σ_i²| ≤ 1e-12·σ₁² holds with a wide margin."""
    H, F = _sets(model, seed)
    kw = {} if k is None else {"top_k": min(k, model.vocab_size)}
    L = logit_matrix(model, H, F, **kw)
    dense = torch.linalg.svdvals(L)
    spec = logit_spectrum(model, H, F, memory_budget=1 + seed % 5000, **kw)
    assert spec.shape == tuple(L.shape)
    scale = float(dense[0]) ** 2 if dense.numel() else 1.0
    torch.testing.assert_close(spec.singular_values**2, dense**2, rtol=0, atol=1e-12 * max(scale, 1e-300))


def test_gram_matrix_is_L_Lt_for_any_budget():
    m = random_isan(6, 8, 3, generator=1)
    H, F = _sets(m, 0, n=15, m=20)
    L = logit_matrix(m, H, F, random_k=3, generator=7)
    for budget in (1, 5000, 10**9):
        G = gram_matrix(m, H, F, random_k=3, generator=7, memory_budget=budget)
        torch.testing.assert_close(G, L @ L.T, rtol=0, atol=1e-12 * float((L**2).sum()))


def test_blocks_respect_the_memory_budget():
    """O(n²) memory: no block holds more than the budget's worth of futures (3 copies of n·c·k·8 bytes)."""
    m = random_isan(5, 8, 3, generator=0)
    H, F = _sets(m, 0, n=10, m=40)
    cols = torch.zeros(40, 2, dtype=torch.long)
    cols[:, 1] = 1
    budget = 3 * 10 * 2 * 8 * 7  # room for 7 futures
    widths = [b.shape[1] for _, b in _future_blocks(m, H, F, cols, path="auto", batch_size=64, memory_budget=budget, progress=False)]
    assert max(widths) == 7 * 2 and sum(widths) == 40 * 2


def test_left_vectors_span_the_dense_column_space():
    m = random_isan(5, 8, 3, generator=2)
    H, F = _sets(m, 3, n=20, m=15)
    L = logit_matrix(m, H, F, top_k=3)
    spec = logit_spectrum(m, H, F, top_k=3, rank=3)
    U = torch.linalg.svd(L, full_matrices=False).U[:, :3]
    # rank 3 = d: σ_3 ≫ σ_4 ≈ 0, so the subspaces agree to rounding
    assert principal_angles(spec, L, 3).max() < 1e-6
    assert torch.allclose((spec.left_vectors.T @ U).abs().sum(0), torch.ones(3, dtype=torch.float64), atol=1e-8)
    assert (spec.left_vectors.abs().argmax(0) == spec.left_vectors.argmax(0)).all()  # sign convention


def test_gram_spectrum_hand_worked():
    L = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    spec = gram_spectrum(L @ L.T, rank=2, shape=(3, 4))
    # LAPACK's eigh happens to be exact on a diagonal matrix (every reflector is the identity), but
    # that is the solver's business: a backward-stable eigensolver is within c·n·eps·‖G‖ on λ = σ²
    # (n = 3, ‖G‖ = 16, c = 8) and within that over the gap 16 − 9 = 7 on the vectors. σ is compared
    # squared: √ of a rounding-level λ ≈ 0 would be ~1e-7.
    eps = torch.finfo(torch.float64).eps
    want_sv2 = torch.tensor([16.0, 9.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(spec.singular_values**2, want_sv2, rtol=0, atol=8 * 3 * eps * 16)
    want_u = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(spec.left_vectors, want_u, rtol=0, atol=8 * 3 * eps * 16 / 7)
    sv = gram_spectrum(torch.eye(3, dtype=torch.float64), shape=(3, 2)).singular_values
    torch.testing.assert_close(sv**2, torch.ones(2, dtype=torch.float64), rtol=0, atol=8 * 3 * eps)


def test_downsized_spectra_match_explicit_submatrices():
    m = random_isan(6, 10, 8, generator=4)
    H, F = _sets(m, 5, n=32, m=32)
    out = downsized_spectra(m, H, F, factors=(1, 2, 4), top_k=3, memory_budget=4000)
    for i, sv in out.items():
        n_i, m_i = int(32 / i**0.5), int(32 / i**0.5)
        L = logit_matrix(m, H[:n_i], F[:m_i], top_k=3)
        dense = torch.linalg.svdvals(L) / (L.numel() ** 0.5)
        torch.testing.assert_close(sv**2, dense**2, rtol=0, atol=1e-12 * float(dense[0]) ** 2)


def test_lowrank_path_is_seeded_and_leaves_global_rng_alone():
    g = torch.Generator().manual_seed(0)
    L = torch.randn(40, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 200, generator=g, dtype=torch.float64)
    before = torch.random.get_rng_state()
    a = lowrank_spectrum(L, 6, generator=1)
    assert torch.equal(torch.random.get_rng_state(), before)  # exact: the generator state's bytes
    b = lowrank_spectrum(L, 6, generator=1)
    # exact: the same seeded sketch and the same computation on the same L, rerun
    assert torch.equal(a.singular_values, b.singular_values) and torch.equal(a.left_vectors, b.left_vectors)
    exact = torch.linalg.svdvals(L)[:3]
    torch.testing.assert_close(a.singular_values[:3], exact, rtol=1e-10, atol=0)  # rank 3 < q: exact range


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: gram_spectrum(torch.zeros(2, 3)), ValueError, r"gram must be a square \(n, n\) tensor; got \(2, 3\)"),
        (lambda: gram_spectrum(torch.eye(2), rank=3), ValueError, r"rank must be <= 2; got 3"),
        (lambda: gram_spectrum(torch.eye(2), shape=(3, 4)), ValueError, r"shape\[0\] must equal the Gram size n=2; got shape \(3, 4\)"),
        (lambda: lowrank_spectrum(torch.zeros(3, 4), 4, generator=0), ValueError, r"q must be <= 3; got 4"),
        (lambda: lowrank_spectrum(torch.zeros(3, 4, dtype=torch.long), 1, generator=0), ValueError, r"L must be a floating \(n, M\) tensor"),
        (lambda: gram_matrix(random_isan(3, 4, 2, generator=0), [()], [()], path="x"), ValueError, r"path must be one of"),
        (lambda: gram_matrix(random_isan(3, 4, 2, generator=0), [()], [()], top_k=1, columns=torch.zeros(1, 1, dtype=torch.long)), ValueError, r"at most one of top_k, random_k and columns"),
        (lambda: gram_matrix(random_isan(3, 4, 2, generator=0), [()], [()], random_k=1), TypeError, r"random_k needs generator="),
        (lambda: downsized_spectra(random_isan(3, 4, 2, generator=0), [()], [()], factors=(0,)), ValueError, r"factors\[0\] must be >= 1; got 0"),
    ],
)
def test_bad_calls(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_spectrum_is_frozen():
    spec = Spectrum(torch.ones(2), None, (2, 2))
    with pytest.raises(Exception, match="cannot assign"):
        spec.shape = (1, 1)
    assert np.isclose(float(spec.singular_values.sum()), 2.0)


# -- issue 14: states once, symmetric product, old route kept for comparison ---------------------------
def _mixed_lengths(model, n, m, seed):
    """Histories of mixed lengths in a scrambled order (the Gram path sorts them by length)."""
    T = model.horizon
    seqs = model.sample(n + m, generator=seed).tolist()
    H = [tuple(s[: 1 + (7 * i) % (T // 2)]) for i, s in enumerate(seqs[:n])]
    F = [tuple(s[: i % (T - T // 2)]) for i, s in enumerate(seqs[n:])]
    return H, F


@pytest.mark.parametrize("budget", [1, 20_000, 2**28])
def test_symmetric_product_and_shared_states_equal_the_old_route(budget):
    from logitrank.algorithms._gram import _accumulate

    m = random_isan(7, 10, 4, generator=3)
    H, F = _mixed_lengths(m, 40, 30, 1)
    cols = torch.randint(7, (len(F), 1), generator=torch.Generator().manual_seed(0))
    cols = torch.cat([cols, (cols + 1) % 7], 1)
    old = _accumulate(m, H, F, cols, "isan", 4096, budget, False, product="full", reuse_states=False)
    L = logit_matrix(m, H, F, columns=cols, path="generic")
    scale = float((L**2).sum())
    torch.testing.assert_close(old, L @ L.T, rtol=0, atol=1e-13 * scale)
    for product in ("symmetric", "full", "factorised"):
        new = gram_matrix(m, H, F, columns=cols, path="isan", memory_budget=budget, product=product)
        torch.testing.assert_close(new, old, rtol=0, atol=1e-13 * scale)
        # exact: every product returns an exactly symmetric G on any BLAS (a mirrored triangle, or
        # (G + Gᵀ)/2 whose (i, j) and (j, i) entries are the same float sum) — issue 20
        torch.testing.assert_close(new, new.T, rtol=0, atol=0)


def test_downsized_spectra_with_scrambled_lengths_match_dense():
    m = random_isan(6, 10, 3, generator=4)
    H, F = _mixed_lengths(m, 48, 48, 2)
    sp = downsized_spectra(m, H, F, factors=(1, 4), top_k=2, normalize=False, path="isan", memory_budget=30_000)
    for i, (n_i, m_i) in {1: (48, 48), 4: (24, 24)}.items():
        dense = torch.linalg.svdvals(logit_matrix(m, H[:n_i], F[:m_i], top_k=2))
        torch.testing.assert_close(sp[i] ** 2, dense**2, rtol=0, atol=1e-12 * float(dense[0]) ** 2)


def test_gram_bad_product_and_huge_n():
    m = random_isan(4, 6, 2, generator=0)
    with pytest.raises(ValueError, match=r"product must be one of \('symmetric', 'full', 'factorised'\); got 'syrk'"):
        gram_matrix(m, [(0,)], [(1,)], product="syrk")
    with pytest.raises(ValueError, match=r"product='factorised' needs a synth.TimeVaryingISAN on path 'auto' or 'isan'"):
        gram_matrix(m, [(0,)], [(1,)], product="factorised", path="generic")
    with pytest.raises(MemoryError, match=r"\(200000, 200000\) float64 Gram matrix needs about .* GiB.*fewer histories"):
        gram_matrix(m, [(0,)] * 200_000, [()])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on the GPU machine)")
def test_cuda_gram_matches_cpu():
    m = random_isan(7, 10, 4, generator=3)
    H, F = _mixed_lengths(m, 40, 30, 1)
    G = gram_matrix(m, H, F, top_k=3)
    Gc = gram_matrix(m.to(device="cuda"), H, F, top_k=3)
    assert Gc.device.type == "cuda" and Gc.dtype == torch.float64
    torch.testing.assert_close(Gc.cpu(), G, rtol=0, atol=1e-12 * float(G.diagonal().sum()))


@pytest.mark.parametrize("product", ["symmetric", "full"])
@pytest.mark.parametrize("rank", [0, 4])
def test_spectrum_off_the_triangle_equals_the_old_route(product, rank):
    """logit_spectrum reads eigenvalues off the accumulated triangle in length-sorted row order
    (no mirror, no permutation); the old route formed the full, re-ordered G first. Weyl bounds the
    difference of σ² by the rounding of the sums, ≈ eps·M·σ₁² ≤ 1e-12·σ₁² here; the rank-d (= 4)
    left subspace has a gap to 0 of σ_4 ≫ eps·σ₁, so its projector agrees to 1e-8."""
    from logitrank.algorithms._gram import _accumulate

    m = random_isan(7, 10, 4, generator=5)
    H, F = _mixed_lengths(m, 60, 40, 3)  # scrambled lengths: the rows are permuted internally
    old_G = _accumulate(m, H, F, None, "isan", 4096, 50_000, False, product="full", reuse_states=False)
    old = gram_spectrum(old_G, rank=rank, shape=(60, 40 * 7))
    new = logit_spectrum(m, H, F, rank=rank, path="isan", memory_budget=50_000, product=product)
    scale = float(old.singular_values[0]) ** 2
    torch.testing.assert_close(new.singular_values**2, old.singular_values**2, rtol=0, atol=1e-12 * scale)
    assert new.shape == old.shape == (60, 280)
    if rank:
        assert new.left_vectors.shape == (60, 4)
        torch.testing.assert_close(new.left_vectors @ new.left_vectors.T, old.left_vectors @ old.left_vectors.T,
                                   rtol=0, atol=1e-8)
        U = torch.linalg.svd(logit_matrix(m, H, F, path="generic"), full_matrices=False).U[:, :4]
        torch.testing.assert_close(new.left_vectors @ new.left_vectors.T, U @ U.T, rtol=0, atol=1e-8)
    else:
        assert new.left_vectors is None


def test_isan_blocks_stay_within_the_memory_budget():
    """On the ISAN path one reused block buffer (float64 model: no copy) plus its maps fit the budget."""
    m = random_isan(6, 10, 3, generator=0)
    H, F = _mixed_lengths(m, 50, 90, 4)
    for budget in (1, 10_000, 60_000, 2**28):
        widths = [b.shape[1] for _, b in _future_blocks(m, H, F, None, path="isan", batch_size=64,
                                                        memory_budget=budget, progress=False)]
        assert sum(widths) == 90 * 6
        assert max(widths) == 6 or 50 * max(widths) * 8 <= budget  # one future per block at the least
        if budget >= 2**28:
            assert widths == [90 * 6]  # everything in one block when it fits


@pytest.mark.parametrize("n", [1, 3, 4, 5, 13])
def test_tiled_mirror_is_exactly_the_mirrored_lower_triangle(n):
    from logitrank.algorithms._gram_sum import mirror_lower_ as _mirror_lower_

    A = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    expected = torch.tril(A) + torch.tril(A, -1).T
    # exact: the mirror copies entries (and x + 0 = x for the expected matrix), no arithmetic
    assert torch.equal(_mirror_lower_(A.clone(), tile=4), expected)  # tiles of 4: edges and a ragged last tile
    assert torch.equal(_mirror_lower_(A.clone()), expected)


def test_sum_over_slices_of_the_futures_equals_one_call():
    """The running sum of benchmarks/bench_gram.py --paper-size (slices added into one _GramSum) is the
    sum of one call up to rounding (block boundaries move): 1e-13 of ‖L‖_F² in float64."""
    from logitrank.algorithms._gram import _accumulate
    from logitrank.algorithms._gram_sum import GramSum as _GramSum

    m = random_isan(7, 10, 4, generator=6)
    H, F = _mixed_lengths(m, 45, 33, 5)
    cols = torch.randint(7, (len(F), 1), generator=torch.Generator().manual_seed(1))
    cols = torch.cat([cols, (cols + 3) % 7], 1)  # two distinct tokens per future
    whole = gram_matrix(m, H, F, columns=cols, path="isan", memory_budget=20_000)
    acc = _GramSum(len(H), None, "symmetric")
    for a, b in ((0, 10), (10, 11), (11, 33)):
        _accumulate(m, H, F[a:b], cols[a:b], "isan", 4096, 20_000, False, keep_sum=True, into=acc)
    scale = float(whole.diagonal().sum())
    spec = logit_spectrum(m, H, F, columns=cols, path="isan", memory_budget=20_000)
    torch.testing.assert_close(acc.spectrum(0, (45, 66)).singular_values ** 2, spec.singular_values**2,
                               rtol=0, atol=1e-13 * scale)
    acc2 = _GramSum(len(H), None, "symmetric")
    for a, b in ((0, 20), (20, 33)):
        _accumulate(m, H, F[a:b], cols[a:b], "isan", 4096, 20_000, False, keep_sum=True, into=acc2)
    torch.testing.assert_close(acc2.leading(45, final=True), whole, rtol=0, atol=1e-13 * scale)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on the GPU machine)")
def test_cuda_spectrum_off_the_triangle_matches_cpu():
    """G stays float64 on the device; values and the rank-d left subspace agree with the CPU route."""
    m = random_isan(7, 10, 4, generator=3)
    H, F = _mixed_lengths(m, 40, 30, 1)
    cpu = logit_spectrum(m, H, F, top_k=3, rank=4, memory_budget=20_000)
    gpu = logit_spectrum(m.to(device="cuda"), H, F, top_k=3, rank=4, memory_budget=20_000)
    assert gpu.singular_values.device.type == "cuda" and gpu.singular_values.dtype == torch.float64
    scale = float(cpu.singular_values[0]) ** 2
    torch.testing.assert_close(gpu.singular_values.cpu() ** 2, cpu.singular_values**2, rtol=0, atol=1e-12 * scale)
    P, Pg = cpu.left_vectors @ cpu.left_vectors.T, (gpu.left_vectors @ gpu.left_vectors.T).cpu()
    torch.testing.assert_close(Pg, P, rtol=0, atol=1e-8)


@pytest.mark.parametrize("n, panels", [(1, 8), (7, 8), (8, 8), (17, 8), (30, 4), (5, 1)])
def test_lower_panels_equal_the_full_product_on_the_lower_triangle(n, panels):
    """The accelerator route of the symmetric product (run here on the CPU): row panels of the lower
    triangle equal tril(G + b bᵀ) to float64 rounding of sums of 40 products (1e-13 relative)."""
    from logitrank.algorithms._gram_sum import add_lower_panels_ as _add_lower_panels_

    g = torch.Generator().manual_seed(n)
    b = torch.randn(n, 40, dtype=torch.float64, generator=g)
    G0 = torch.randn(n, n, dtype=torch.float64, generator=g)
    out = _add_lower_panels_(G0.clone(), b, panels)
    expected = G0 + b @ b.T
    torch.testing.assert_close(torch.tril(out), torch.tril(expected), rtol=1e-13, atol=1e-13)


def test_gram_accumulator_slices_merge_and_state_equal_one_call():
    """GramAccumulator (public): slices in two accumulators, merged, and a state round trip all give the
    one-call Gram matrix, to float64 summation rounding; the ISAN path (rows sorted by length) and the
    generic path (rows as given) merge into one sum."""
    from logitrank.algorithms import GramAccumulator

    m = random_isan(7, 10, 4, generator=3)
    H, F = _mixed_lengths(m, 40, 30, 1)
    whole = gram_matrix(m, H, F, top_k=3)
    scale = float(whole.diagonal().sum())
    a = GramAccumulator(m, H, path="isan").add(F[:10], top_k=3)
    b = GramAccumulator(m, H, path="generic").add(F[10:], top_k=3)
    a.merge(b)
    assert a.columns == len(F) * 3 and a.slices == 2
    torch.testing.assert_close(a.gram, whole, rtol=0, atol=1e-13 * scale)
    # exact: the Gram read back is a mirrored copy of one triangle
    assert torch.equal(a.gram, a.gram.T)
    c = GramAccumulator.from_state(m, H, a.state(), path="isan")
    # exact: the restored accumulator holds the same tensor and row order
    assert torch.equal(c.gram, a.gram)
    sp = c.spectrum()
    dense = torch.linalg.svdvals(logit_matrix(m, H, F, top_k=3))
    torch.testing.assert_close(sp.singular_values**2, dense**2, rtol=0, atol=1e-12 * float(dense[0]) ** 2)
    with pytest.raises(ValueError, match="same histories"):
        a.merge(GramAccumulator(m, H[:-1]))
    with pytest.raises(ValueError, match=r"state\['G'\] must be an \(40, 40\) tensor"):
        GramAccumulator.from_state(m, H, {"G": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="cannot be accumulated"):
        GramAccumulator(m, H, product="factorised")
