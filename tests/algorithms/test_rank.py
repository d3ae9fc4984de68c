import pytest
import torch

from logitrank.algorithms import numerical_rank

# float results compared across code paths: .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def test_planted_rank_is_recovered():
    g = torch.Generator().manual_seed(0)
    for r in range(6):
        M = torch.randn(30, r, generator=g, dtype=torch.float64) @ torch.randn(r, 40, generator=g, dtype=torch.float64)
        assert numerical_rank(M) == r


def test_rtol_drops_small_directions():
    M = torch.diag(torch.tensor([1.0, 1e-3, 1e-9], dtype=torch.float64))
    assert numerical_rank(M) == 3
    assert numerical_rank(M, rtol=1e-6) == 2
    assert numerical_rank(M, tol=1e-2) == 1


def test_bad_calls():
    with pytest.raises(ValueError, match=r"matrix must have shape \(m, n\); got shape \(3,\)"):
        numerical_rank(torch.ones(3))
    with pytest.raises(ValueError, match="at most one of tol and rtol"):
        numerical_rank(torch.ones(2, 2), tol=1.0, rtol=1.0)
