"""Issue 32: E8 on a real model compares it with the other installed family and its own untrained twin
(the tiny checkpoints' 64 positions cannot hold the real histories, so they never entered)."""

from types import SimpleNamespace

from logitrank.verify.claims import CheckConfig
from logitrank.verify.claims.checks import _real_structure_claims as e8


def _fakes(monkeypatch, installed):
    asked = []

    def get_model(name, dtype="float32"):
        asked.append((name, dtype))
        if name not in installed:
            raise FileNotFoundError(f"{name} is not installed")
        return SimpleNamespace(name=name)

    monkeypatch.setattr(e8, "get_model", get_model)
    monkeypatch.setattr(e8, "untrained_twin", lambda model, config: SimpleNamespace(name=f"{model.name}-init{config.seed}"))
    return asked


def test_a_real_model_meets_the_other_family_and_its_twin(monkeypatch):
    asked = _fakes(monkeypatch, {"smollm2", "gemma3"})
    config = CheckConfig(model="smollm2", dtype="bfloat16", seed=3)
    names = [m.name for m in e8._e8_models(SimpleNamespace(name="smollm2"), config)]
    assert names == ["smollm2", "gemma3", "smollm2-init3"]
    assert asked == [("gemma3", "bfloat16")]  # the other family, in the run's dtype; never a tiny checkpoint


def test_a_family_that_is_not_installed_is_left_out(monkeypatch):
    _fakes(monkeypatch, {"gemma3"})
    names = [m.name for m in e8._e8_models(SimpleNamespace(name="gemma3"), CheckConfig(model="gemma3"))]
    assert names == ["gemma3", "gemma3-init0"]  # one trained model: E8 then says not-run (two are needed)


def test_another_hugging_face_model_meets_both_families(monkeypatch):
    _fakes(monkeypatch, {"smollm2", "gemma3"})
    names = [m.name for m in e8._e8_models(SimpleNamespace(name="my-folder"), CheckConfig(model="my-folder"))]
    assert names == ["my-folder", "smollm2", "gemma3", "my-folder-init0"]
