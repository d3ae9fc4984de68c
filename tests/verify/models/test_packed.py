"""The packed, head-sparse logit block (verify/models/_packed.py) against the straightforward path.

Reference: every [start] ∘ h ∘ f run alone through the plain forward pass, logits mean-centred
over the vocabulary. Compared on the tiny GPT, a random GPT-2 and a random Llama (SmolLM2's
architecture), with histories and futures of mixed lengths, the empty history and future, futures
longer than a pack, tiny packs and tiny passes (padding in every batch).
Tolerance: float64 networks, entries of size ~1: 1e-12 (reordered sums differ by ~1e-15).
"""

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from logitrank.verify.models import HFCausalLM, TinyConfig, TinyLM, _packed
from logitrank.verify.models._packed import pack_futures, packed_logit_block

# the packed path against the straightforward one: .ci/run reruns these on other BLAS kernels
pytestmark = pytest.mark.numerics

TOL64 = 1e-12
V = 60
H = [(1, 2, 3), (4,), (5, 6, 7), (), (8, 9), (10, 11, 12, 13, 14, 15, 16, 17)]
F = [(), (20,), (21, 22, 23, 24), (25, 26), (1,) * 9, (30, 31, 32), (40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50)]


def _gpt2(dtype=torch.float64):
    torch.manual_seed(0)  # from_config draws from the global generator
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=V, n_positions=64, bos_token_id=0, eos_token_id=0)
    return HFCausalLM(GPT2LMHeadModel(cfg), bos_token_id=0, dtype=dtype)


def _llama(dtype=torch.float64):
    torch.manual_seed(1)
    cfg = LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=V, max_position_embeddings=64, bos_token_id=0, eos_token_id=0,
                      tie_word_embeddings=True)
    return HFCausalLM(LlamaForCausalLM(cfg), bos_token_id=0, dtype=dtype)


def _tiny():
    return TinyLM.untrained(TinyConfig(n_layer=2, n_embd=32, n_head=2, block_size=64), seed=0, dtype=torch.float64)


MODELS = {"tiny": _tiny, "gpt2": _gpt2, "llama": _llama}


def _straightforward(lm, H, F):
    """(n, m, V) from the full forward pass on each h ∘ f alone, mean-centred."""
    return torch.stack([torch.cat([lm.logits([list(h) + list(f)]) for f in F]) for h in H])


@pytest.fixture(scope="module", params=list(MODELS))
def lm(request):
    return MODELS[request.param]()


def test_packed_path_is_taken(lm):
    assert lm.packed


@pytest.mark.parametrize("pack_tokens, max_positions", [(None, 8192), (1, 8192), (5, 8192), (12, 24), (1000, 16)])
def test_equals_full_forward_with_mixed_lengths_and_padding(lm, pack_tokens, max_positions):
    lm.max_positions = max_positions  # small passes: batches of 1–2 histories, padded rows
    try:
        got = packed_logit_block(lm, H, F, None, pack_tokens=pack_tokens)
    finally:
        del lm.max_positions
    assert got.shape == (len(H), len(F), lm.vocab_size)
    assert torch.allclose(got, _straightforward(lm, H, F), atol=TOL64, rtol=0)


@pytest.mark.parametrize("pass_positions, pack_tokens", [(1, None), (7, 3), (30, 4), (200, 10), (4096, 2)])
def test_equals_full_forward_across_pass_shapes(lm, monkeypatch, pass_positions, pack_tokens):
    """Passes of P packs × B histories: several packs per pass, padded packs, groups cut by the pass size."""
    seen = []

    class Spy(_packed._Pass):
        def __init__(self, packs, F, dev):
            super().__init__(packs, F, dev)
            seen.append((len(packs), int((self.ids.new_tensor([sum(len(F[j]) for j in p) for p in packs]) < self.T).sum())))

    monkeypatch.setattr(_packed, "PASS_POSITIONS", pass_positions)
    monkeypatch.setattr(_packed, "_Pass", Spy)
    cols = torch.stack([torch.randperm(lm.vocab_size, generator=torch.Generator().manual_seed(j))[:5] for j in range(len(F))])
    got = packed_logit_block(lm, H, F, cols, pack_tokens=pack_tokens)
    full = _straightforward(lm, H, F)
    assert torch.allclose(got, full.gather(2, cols[None].expand(len(H), -1, -1)), atol=TOL64, rtol=0)
    if pass_positions == 200:  # packs of 11, 10 and 9 tokens share a pass: two of them padded
        assert max(p for p, _ in seen) == 3 and sum(pads for _, pads in seen) == 2


@pytest.mark.parametrize("make, tol", [(_gpt2, TOL64), (_llama, 1e-6)])
def test_eager_attention_gets_an_additive_mask(make, tol):
    """Eager attention adds the mask to the scores: a bool mask would let every key through (errors
    0.04 and 0.13 here). Llama's eager softmax runs in float32, hence its tolerance of 1e-6."""
    lm = make()
    lm.net.set_attn_implementation("eager")
    assert lm.net.config._attn_implementation == "eager"
    assert torch.allclose(lm.logit_block(H, F), _straightforward(lm, H, F), atol=tol, rtol=0)


@pytest.mark.parametrize("bad, err", [(0, ValueError), (-3, ValueError), (2.5, TypeError)])
def test_bad_pack_tokens_is_named(bad, err):
    lm = _tiny()
    with pytest.raises(err, match="pack_tokens"):
        packed_logit_block(lm, H, F, None, pack_tokens=bad)
    lm.pack_tokens = bad
    with pytest.raises(err, match="pack_tokens"):
        lm.logit_block(H, F)


@pytest.mark.parametrize("with_columns", [False, True])
def test_head_bias_is_centred_and_added(with_columns):
    """A head with a bias b: logits x·Wᵀ + b, centred — the reference plus b − mean(b) at the same columns."""
    lm = _tiny()
    b = torch.randn(lm.vocab_size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ref = _straightforward(lm, H, F) + (b - b.mean())
    lm._head = lambda: (lm.net.head.weight, b)
    cols = torch.stack([torch.randperm(lm.vocab_size, generator=torch.Generator().manual_seed(j))[:4] for j in range(len(F))])
    got = lm.logit_block(H, F, cols if with_columns else None)
    want = ref.gather(2, cols[None].expand(len(H), -1, -1)) if with_columns else ref
    assert torch.allclose(got, want, atol=TOL64, rtol=0)


def test_columns_are_the_centred_full_logits_gathered(lm):
    cols = torch.stack([torch.randperm(lm.vocab_size, generator=torch.Generator().manual_seed(j))[:7] for j in range(len(F))])
    got = lm.logit_block(H, F, cols)
    full = _straightforward(lm, H, F)
    assert torch.allclose(got, full.gather(2, cols[None].expand(len(H), -1, -1)), atol=TOL64, rtol=0)


def test_packed_equals_the_previous_cached_path(lm):
    new = lm.logit_block(H, F)
    lm._packed_ok = False
    try:
        old = lm.logit_block(H, F)
    finally:
        lm._packed_ok = True
    assert torch.allclose(new, old, atol=TOL64, rtol=0)


def test_progress_counts_every_cell(lm):
    seen = []
    lm.logit_block(H, F, update=seen.append)
    assert sum(seen) == len(H) * len(F)


def test_no_deprecation_warnings_from_transformers():
    lm = _gpt2(torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.logit_block(H, F)
        lm.continuation_logits([1, 2], torch.tensor([[3, 4, 5]]))


@pytest.mark.parametrize("make", [_gpt2, _llama])
def test_bfloat16_error_against_float32(make):
    """bf16 weights: logits stay within 3% (relative Frobenius) of float32; measured ~0.4–0.8% here."""
    hi, lo = make(torch.float32), make(torch.bfloat16)
    a, b = hi.logit_block(H, F), lo.logit_block(H, F)
    assert b.dtype == torch.float32  # the head runs in float32
    rel = float((a - b).norm() / a.norm())
    assert 0 < rel < 3e-2


def test_softcapped_models_use_the_cached_path():
    lm = _gpt2()
    lm.net.config.final_logit_softcapping = 30.0
    again = HFCausalLM(lm.net, bos_token_id=0)
    assert not again.packed


@given(st.lists(st.integers(1, 20), min_size=0, max_size=30), st.integers(1, 40))
def test_pack_futures_packs_every_future_once_within_budget(lengths, budget):
    packs = pack_futures(lengths, budget)
    assert sorted(j for p in packs for j in p) == list(range(len(lengths)))
    for p in packs:
        assert len(p) == 1 or sum(lengths[j] for j in p) <= budget


def test_pack_futures_by_hand():
    assert pack_futures([3, 5, 2, 4], 7) == [[1, 2], [3, 0]]
    assert pack_futures([9, 1], 4) == [[0], [1]]
