"""The tiny byte-level GPT: protocol, prefix-cached logit blocks, rollout, training and checkpoints."""

import json

import numpy as np
import pytest
import torch

from logitrank.algorithms import lingen, logit_matrix
from logitrank.synth import LanguageModel
from logitrank.verify.models import TinyConfig, TinyGPT, TinyLM, TrainConfig, load_checkpoint, train_tiny

# cached, batched and uncached evaluations compared: .ci/run reruns these on other BLAS kernels
pytestmark = pytest.mark.numerics

# The fixture runs in float64 so that cached and uncached evaluations, which only reorder sums,
# agree to rounding (1e-10 on logits of size ~20); the float32 test scales its tolerance with them.
TOL = 1e-10


@pytest.fixture(scope="module")
def lm():
    net = TinyLM.untrained(TinyConfig(n_layer=2, n_head=2, n_embd=32, block_size=24), seed=0)
    with torch.no_grad():  # larger weights than at init, so logits are far from uniform
        for p in net.net.parameters():
            p.mul_(8)
    return TinyLM(net.net, dtype=torch.float64)


def _mixed_sets():
    H = [(1, 2, 3), (4,), (5, 6, 7), (), (8, 9), (10, 11, 12, 13, 14)]
    F = [(), (20,), (21, 22, 23, 24), (25, 26), (1,) * 7, (30, 31, 32)]
    return H, F


def test_is_a_language_model_with_start_token(lm):
    assert isinstance(lm, LanguageModel)
    out = lm.logits([[]])  # the empty prefix exists thanks to the start token
    assert out.shape == (1, 256)
    assert abs(float(out.sum())) < 1e-3  # mean-centred


def test_cached_block_equals_every_prefix_from_scratch(lm):
    H, F = _mixed_sets()
    cached = logit_matrix(lm, H, F)  # dispatches to logit_block
    naive = logit_matrix(lm, H, F, path="generic")
    assert torch.allclose(cached, naive, atol=TOL, rtol=0)


def test_padding_does_not_leak_between_futures(lm):
    # a short future batched with long ones gives the same logits as alone
    H = [(3, 4, 5)]
    alone = lm.logit_block(H, [(7,)])[:, 0]
    batched = lm.logit_block(H, [(9,) * 12, (7,), (8, 8, 8)])[:, 1]
    assert torch.allclose(alone, batched, atol=TOL, rtol=0)


def test_small_passes_give_the_same_block(lm):
    H, F = _mixed_sets()
    big = lm.logit_block(H, F)
    lm.max_positions = 5  # forces one cell per pass
    try:
        small = lm.logit_block(H, F)
    finally:
        lm.max_positions = TinyLM.max_positions
    assert torch.allclose(big, small, atol=TOL, rtol=0)


def test_columns_are_selected_after_centring(lm):
    H, F = _mixed_sets()
    cols = torch.tensor([[0, 5]] * len(F))
    full = lm.logit_block(H, F)
    assert torch.allclose(lm.logit_block(H, F, cols), full[:, :, [0, 5]], atol=TOL, rtol=0)


def test_continuation_logits_read_every_prefix(lm):
    z = torch.tensor([[7, 8, 9, 10], [1, 1, 2, 3]])
    out = lm.continuation_logits([5, 6], z)  # (2, 5, 256)
    for g in range(2):
        for j in range(5):
            ref = lm.logits([[5, 6] + z[g, :j].tolist()])[0]
            assert torch.allclose(out[g, j], ref, atol=TOL, rtol=0)


class _NoCache:
    """The same model seen only through the protocol (no logit_block / rollout)."""

    def __init__(self, m):
        self.m, self.vocab_size, self.horizon, self.device, self.dtype = m, m.vocab_size, None, m.device, m.dtype

    def logits(self, prefixes):
        return self.m.logits(prefixes)


def test_rollout_matches_generic_lingen(lm):
    H = [(1, 2, 3), (4, 5), (6, 7, 8), (9,)]
    v = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fast = lingen(lm, H, v, 5, n_samples=3, generator=1)
    lm.memory_budget = 1  # one stream per batch
    try:
        batched = lingen(lm, H, v, 5, n_samples=3, generator=1)
    finally:
        lm.memory_budget = TinyLM.memory_budget
    slow = lingen(_NoCache(lm), H, v, 5, n_samples=3, generator=1)
    # Integer tokens by inverse CDF from the same uniforms; the three rollouts compute the logits by
    # different routes (prefix cache, one stream per batch, no cache), equal to rounding (<= TOL)
    # only. A token can differ only where a uniform falls within that rounding of one of the 256 CDF
    # steps: odds below 2·256·TOL ≈ 5e-8 per draw, 30 draws here; integer equality is kept.
    assert torch.equal(fast.tokens, slow.tokens) and torch.equal(fast.tokens, batched.tokens)
    assert torch.allclose(fast.logits, slow.logits, atol=TOL, rtol=0)


def test_float32_agrees_to_its_precision(lm):
    lm32 = TinyLM(TinyGPT(lm.net.cfg), dtype=torch.float32)
    lm32.net.load_state_dict({k: v.float() for k, v in lm.net.state_dict().items()})
    H, F = _mixed_sets()
    ref = logit_matrix(lm, H, F)
    got = logit_matrix(lm32, H, F)
    assert torch.allclose(got.double(), ref, atol=1e-5 * float(ref.abs().max()), rtol=0)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m: m.logits([[1] * 24]), ValueError, r"max_length=24"),
        (lambda m: m.logit_block([(1,) * 20], [(2,) * 10]), ValueError, r"must fit max_length=24"),
        (lambda m: m.logit_block([(1,)], [(2,)], torch.zeros(3, 2, dtype=torch.long)), ValueError, r"columns must have shape"),
        (lambda m: m.continuation_logits([1], torch.zeros(1, 30, dtype=torch.long)), ValueError, r"max_length=24"),
        (lambda m: m.logits([[256]]), ValueError, r"token ids in \[0, 256\)"),
        (lambda m: TinyConfig(n_embd=30, n_head=4), ValueError, r"n_embd must be divisible by n_head=4"),
    ],
)
def test_bad_calls(lm, call, error, match):
    with pytest.raises(error, match=match):
        call(lm)


def test_training_writes_checkpoints_that_load_back(tmp_path):
    rng = np.random.default_rng(0)
    text = rng.integers(97, 100, size=4000).astype(np.uint8)  # 'a'…'c'
    cfg = TrainConfig(model=TinyConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), steps=3, batch_size=4,
                      warmup=1, checkpoints=(0, 2), eval_batches=1)
    manifest = train_tiny(text, text[:500].copy(), tmp_path, cfg)
    assert [c["step"] for c in manifest["checkpoints"]] == [0, 2, 3]
    assert json.loads((tmp_path / "manifest.json").read_text())["train"]["steps"] == 3
    lm = load_checkpoint(tmp_path / "step00003.pt")
    assert lm.name == "tiny@step3" and lm.logits([[97, 98]]).shape == (1, 256)
    with pytest.raises(ValueError, match=r"train_data must hold at least block_size \+ 1 = 17 bytes"):
        train_tiny(text[:5].copy(), text, tmp_path, cfg)
