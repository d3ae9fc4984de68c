"""LinGen (paper A, §3.3, Algorithm 1): weights, generation, per-position KL, the short-context baseline."""

import pytest
import torch

from logitrank.algorithms import ContextWindow, fit_lingen_weights, lingen, logit_matrix, position_kl
from logitrank.synth import all_sequences, random_isan

# float results compared across code paths (least squares, the LinGen rollout against the model's own
# logits): .ci/run runs these again on other BLAS kernels
pytestmark = pytest.mark.numerics


def _planted_isan():
    """A dim-3 ISAN, six histories of length 2 and a target whose state is a known combination."""
    model = random_isan(4, 6, 3, generator=0)
    H = [(0, 1), (1, 2), (2, 3), (3, 0), (1, 1), (2, 0)]
    target = (3, 3)
    X = model.states(torch.tensor(H))[:, -1]  # (6, 3)
    x = model.states(torch.tensor([target]))[:, -1]  # (1, 3)
    v = torch.linalg.lstsq(X.T, x.T).solution[:, 0]  # x = vᵀ X exactly (X spans R^3)
    return model, H, target, v


def test_planted_state_combination_gives_zero_kl():
    # Linear states ⇒ L(h_targ ∘ f) = Σ v_h L(h ∘ f) for every f, so LinGen samples from M itself.
    model, H, target, _ = _planted_isan()
    F = [()] + [tuple(f) for j in (1, 2, 3) for f in all_sequences(4, j).tolist()]
    v = fit_lingen_weights(logit_matrix(model, H, F), logit_matrix(model, [target], F)[0])
    out = lingen(model, H, v, 4, n_samples=20, generator=1)
    kl = position_kl(model, target, out.tokens, out.logits)
    assert kl.shape == (20, 4)
    assert float(kl.abs().max()) < 1e-10


def test_fit_recovers_planted_weights_and_ridge_shrinks():
    g = torch.Generator().manual_seed(3)
    L = torch.randn(5, 40, generator=g, dtype=torch.float64)
    v = torch.randn(2, 5, generator=g, dtype=torch.float64)
    assert torch.allclose(fit_lingen_weights(L, v @ L), v, atol=1e-12)
    ridged = fit_lingen_weights(L, v @ L, ridge=100.0)
    assert ridged.norm() < v.norm()


def test_worked_example_by_hand():
    # rows (1, 0) and (0, 1): the target (2, −3) is 2·row₀ − 3·row₁
    L = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # LAPACK's SVD-based solve (gelsd) happens to be exact on the identity, but nothing promises it on
    # every kernel; a backward-stable solve with condition number 1 is within a few eps·|v|: 8·eps·3
    got = fit_lingen_weights(L, torch.tensor([2.0, -3.0]))  # a float32 target is accepted
    want = torch.tensor([2.0, -3.0], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=0, atol=8 * torch.finfo(torch.float64).eps * 3)


def test_single_history_with_unit_weight_samples_the_model():
    model = random_isan(3, 6, 2, generator=2)
    out = lingen(model, [(1, 0)], torch.ones(1), 3, n_samples=50, generator=0)
    assert torch.allclose(out.logits[:, 0], model.logits([[1, 0]]).double().expand(50, -1))
    assert float(position_kl(model, (1, 0), out.tokens, out.logits).abs().max()) < 1e-12


def test_lingen_is_reproducible_and_rows_are_ordered():
    model, H, _, v = _planted_isan()
    W = torch.stack([v, -v])
    a = lingen(model, H, W, 3, n_samples=4, generator=5)
    b = lingen(model, H, W, 3, n_samples=4, generator=5)
    assert torch.equal(a.tokens, b.tokens)  # exact: integer tokens of the same computation, rerun
    assert a.rows.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_context_window_drops_old_tokens():
    base = random_isan(3, 6, 2, generator=0)
    short = ContextWindow(base, 2)
    assert torch.allclose(short.logits([[2, 1, 0, 1]]), base.logits([[0, 1]]), atol=1e-14)
    assert torch.allclose(ContextWindow(base, 0).logits([[2, 1]]), base.logits([[]]).expand(1, -1), atol=1e-14)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: fit_lingen_weights(torch.ones(2, 3), torch.ones(4)), ValueError, r"M = 3 columns"),
        (lambda: fit_lingen_weights(torch.ones(2, 3), torch.ones(3), ridge=-1.0), ValueError, r"ridge must lie in"),
        (lambda: fit_lingen_weights([[1.0]], torch.ones(1)), TypeError, r"L_histories must be a torch.Tensor"),
        (lambda: fit_lingen_weights(torch.ones(2, 3, dtype=torch.long), torch.ones(3)), TypeError, r"floating"),
        (lambda: lingen(random_isan(3, 5, 2, generator=0), [(0,)], torch.ones(2), 2, generator=0), ValueError,
         r"v must have n = 1 entries"),
        (lambda: lingen(random_isan(3, 5, 2, generator=0), [], torch.ones(1), 2, generator=0), ValueError,
         r"at least one history"),
        (lambda: lingen(random_isan(3, 5, 2, generator=0), [(0,)], torch.ones(1), 0, generator=0), ValueError,
         r"n_tokens must be >= 1"),
        (lambda: lingen(random_isan(3, 5, 2, generator=0), [(0,)], torch.ones(1), 2, generator=None), TypeError,
         r"generator must be"),
        (lambda: position_kl(random_isan(3, 5, 2, generator=0), (0,), torch.zeros(2, 2, dtype=torch.long),
                             torch.zeros(2, 3, 3)), ValueError, r"logits must have shape \(G, m, V\) = \(2, 2, 3\)"),
        (lambda: ContextWindow(random_isan(3, 5, 2, generator=0), -1), ValueError, r"window must be >= 0"),
    ],
)
def test_bad_calls(call, error, match):
    with pytest.raises(error, match=match):
        call()
