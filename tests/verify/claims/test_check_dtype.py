"""Issue 32, item 3: the real-model checks run in bfloat16 when asked (CheckConfig.dtype, ``check --dtype``),
say so in their settings, and never share a resume key or a figure folder with a float32 run."""

import json
import subprocess
import sys

import pytest
import torch

from logitrank.verify.claims import CheckConfig
from logitrank.verify.claims._claim_store import settings_key
from logitrank.verify.claims.checks import _real_setup


def test_dtype_is_validated_with_the_argument_named():
    with pytest.raises(ValueError, match=r"dtype must be one of \('float32', 'bfloat16'\).*'float16'"):
        CheckConfig(dtype="float16")


def test_float32_keys_are_unchanged_and_bfloat16_keys_differ():
    f32, bf16 = CheckConfig(model="smollm2"), CheckConfig(model="smollm2", dtype="bfloat16")
    assert "dtype" not in json.loads(settings_key(f32))  # old float32 runs still resume
    assert json.loads(settings_key(bf16))["dtype"] == "bfloat16"
    assert settings_key(f32) != settings_key(bf16)
    assert f32.figure_dir != bf16.figure_dir and "bfloat16" in str(bf16.figure_dir)


def test_get_model_loads_the_weights_in_the_dtype_asked():
    model = _real_setup.get_model("tiny", "bfloat16")
    assert {p.dtype for p in model.net.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in _real_setup.get_model("tiny").net.parameters()} == {torch.float32}


def test_the_untrained_twin_takes_the_dtype_and_leaves_the_global_rng_alone():
    from transformers import LlamaConfig, LlamaForCausalLM

    from logitrank.verify.models import HFCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, max_position_embeddings=64)
    trained = HFCausalLM(LlamaForCausalLM(cfg).to(torch.bfloat16), tokenizer=None, bos_token_id=0, name="toy-llama")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    twin = _real_setup.untrained_twin(trained, CheckConfig(seed=4, dtype="bfloat16"))
    assert torch.equal(torch.get_rng_state(), before)  # exact: the generator's state bytes
    assert {p.dtype for p in twin.net.parameters()} == {torch.bfloat16}
    again = _real_setup.untrained_twin(trained, CheckConfig(seed=4, dtype="bfloat16"))
    first = next(twin.net.parameters())
    assert torch.equal(first, next(again.net.parameters()))  # exact: same seed, same draws


def test_check_dtype_runs_in_bfloat16_and_records_it(tmp_path):
    out = tmp_path / "checks.json"
    done = subprocess.run([sys.executable, "-m", "logitrank.verify.cli", "check", "E6", "--model", "tiny", "--dtype",
                           "bfloat16", "--seeds", "1", "--json", str(out)], check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["setting"]["dtype"] == "bfloat16" and row["verdict"] in ("holds", "fails")
    bad = subprocess.run([sys.executable, "-m", "logitrank.verify.cli", "check", "E6", "--dtype", "float16"],
                         check=False, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--dtype" in bad.stderr and "float16" in bad.stderr
