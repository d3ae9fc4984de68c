"""X6 (issue 32): the rank of a model's logit vectors equals its hidden width — on tiny in CI, and a
mutation (a non-linear head) that the check must call *fails*."""

import torch

from logitrank.verify import CheckConfig, run_check
from logitrank.verify.claims.checks import _width_claims


def test_x6_holds_on_tiny_over_three_seeds(tmp_path):
    r = run_check("X6", CheckConfig(scale="quick", seeds=3, out_dir=str(tmp_path)))
    assert r.verdict == "holds", r.reason
    assert r.figures["rank"] == 96 and r.figures["rank − width"] == 0 and r.figures["σ_d/σ_{d+1}"] >= 10


def test_x6_fails_when_the_logits_are_not_linear_in_the_hidden_state(tmp_path, monkeypatch):
    from logitrank.verify.models import load_model

    tiny = load_model("tiny")

    class SoftCapped:  # logits pass through 3·tanh(·/3) (Gemma-2-style soft-capping): not low rank any more
        vocab_size, horizon, name, width = tiny.vocab_size, tiny.horizon, "tiny-softcapped", tiny.width

        def logits(self, prefixes):
            return 3.0 * torch.tanh(tiny.logits(prefixes) / 3.0)

    monkeypatch.setattr(_width_claims, "get_model", lambda name, dtype="float32": SoftCapped())
    r = run_check("X6", CheckConfig(scale="quick", seeds=1, out_dir=str(tmp_path)))
    assert r.verdict == "fails" and r.figures["rank"] > 96


def test_x6_is_not_run_for_a_model_without_a_stated_width(tmp_path, monkeypatch):
    from logitrank.synth import random_isan

    monkeypatch.setattr(_width_claims, "get_model", lambda name, dtype="float32": random_isan(4, 3, 2, generator=0))
    r = run_check("X6", CheckConfig(scale="quick", seeds=1, out_dir=str(tmp_path)))
    assert r.verdict == "not-run" and "hidden width" in r.reason
