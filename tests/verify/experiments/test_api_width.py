"""Issue 25, claim 4a: the tiny model's hidden width read from outside, through the served API."""

import math
from collections import Counter

import pytest
import torch

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from logitrank.synth import random_isan
from logitrank.verify.experiments import hidden_width
from logitrank.verify.models import APIModel, load_model, running_server, serve_app


def _prompts_and_columns(n, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 12, (n,), generator=g).tolist()
    prompts = [tuple(torch.randint(0, 256, (t,), generator=g).tolist()) for t in lengths]
    return prompts, sorted(torch.randperm(256, generator=g)[:m].tolist())


def test_tiny_width_through_the_api(monkeypatch):
    """rank = width = 96 on 128 prompts × 112 columns, with a wide gap, at ⌈112/128⌉ = 1 logprob_token_ids
    request per 16 prompts of one length (issue 33; ⌈111/19⌉ = 6 calls per prompt by the exact method).

    logprob_error=1e-9: the local server computes log-probabilities in float64 (its answers agree with
    the float32 network's logits to ~1e-13), so the Weyl tolerance √(n·m)·4δ sits far below σ_96.
    """
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    tiny = load_model("tiny")
    prompts, cols = _prompts_and_columns(128, 112)
    with running_server(serve_app(tiny, name="tiny")) as url, APIModel(url, "tiny", logprob_error=1e-9) as api:
        hw = hidden_width(api, prompts, cols)
    assert hw.rank == hw.largest_gap_rank == tiny.width == 96
    assert hw.gap > 100  # σ_96 ≈ 4e-3 (the LayerNorm-bias direction) over float32 noise ≈ 1e-5
    lengths = Counter(len(p) for p in prompts)
    assert hw.calls == sum(math.ceil(n / 16) for n in lengths.values()) and hw.cached == 0
    assert hw.tokens > hw.calls
    local = hidden_width(tiny, prompts, cols)
    assert local.rank == 96 and abs(hw.singular_values - local.singular_values).max() < 1e-4


def test_the_layernorm_bias_is_the_plus_one():
    """Zeroing ln_f's bias leaves (x − μ)/σ in a (d − 1)-dim subspace: rank width − 1 (float64, local)."""
    tiny = load_model("tiny", dtype=torch.float64)
    net = tiny.net
    saved = net.ln_f.bias.detach().clone()
    prompts, cols = _prompts_and_columns(128, 112)
    try:
        assert hidden_width(tiny, prompts, cols).rank == 96
        with torch.no_grad():
            net.ln_f.bias.zero_()
        assert hidden_width(tiny, prompts, cols).rank == 95
    finally:
        with torch.no_grad():
            net.ln_f.bias.copy_(saved)


def test_isan_width_is_its_hidden_dim():
    isan = random_isan(8, 5, 3, generator=0)
    prompts = [(a, b, c) for a in range(8) for b in range(8) for c in range(2)]
    hw = hidden_width(isan, prompts, range(8))
    assert hw.rank == 3 and hw.gap > 1e8 and hw.calls == 0


@pytest.mark.parametrize(("columns", "match"), [([], "columns must be distinct"), ([1, 1], "columns must be distinct"),
                                                ([8], r"token ids in \[0, 8\)")])
def test_bad_columns(columns, match):
    with pytest.raises(ValueError, match=match):
        hidden_width(random_isan(8, 5, 3, generator=0), [(0,)], columns)
