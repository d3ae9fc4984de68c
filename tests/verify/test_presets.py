"""Experiment settings as presets with validated overrides, recorded with every result (issue 22)."""

import pytest

from logitrank.verify import CheckConfig, ClaimResult
from logitrank.verify._presets import Presets, parse_overrides
from logitrank.verify.claims import _check_api as api
from logitrank.verify.claims import _registry as reg

P = Presets({"quick": {"n": 32, "eps": [1e-3, 1e-2], "model": "tiny", "fast": True, "size": (3, 5, 2)},
             "full": {"n": 256, "eps": [1e-4, 1e-3, 1e-2], "model": "tiny", "fast": False, "size": (3, 6, 3)}})


def test_resolve_applies_overrides_in_the_presets_shape():
    assert P.resolve("full") == P["full"]
    out = P.resolve("quick", {"n": 64, "eps": (0.1,), "size": (2, 4, 2)})
    assert out["n"] == 64 and out["eps"] == [0.1] and out["size"] == (2, 4, 2) and out["model"] == "tiny"
    assert P["quick"]["n"] == 32  # the table is never edited


@pytest.mark.parametrize("overrides, message", [
    ({"nn": 3}, r"unknown setting 'nn' for this experiment \(did you mean 'n'\?\)"),
    ({"n": 2.5}, r"setting n must be int; got 2.5"),
    ({"n": True}, r"setting n must be int; got True"),
    ({"fast": 1}, r"setting fast must be true or false; got 1"),
    ({"eps": 0.1}, r"setting eps must be a list like \[0.001, 0.01\]; got 0.1"),
    ({"eps": ["a"]}, r"setting eps must be a list"),
    ({"model": 3}, r"setting model must be str; got 3"),
])
def test_bad_overrides_are_refused_with_the_key_and_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        P.resolve("quick", overrides)


def test_presets_must_share_their_keys():
    with pytest.raises(ValueError, match=r"preset 'full' has keys \['m'\]; the others have \['n'\]"):
        Presets({"quick": {"n": 1}, "full": {"m": 1}})


def test_parse_overrides():
    assert parse_overrides(["n=256", "k = 200", "corpus=docstrings", "eps=[1e-3]", "fast=false"]) == {
        "n": 256, "k": 200, "corpus": "docstrings", "eps": [1e-3], "fast": False}
    with pytest.raises(ValueError, match="--set expects KEY=VALUE; got 'n'"):
        parse_overrides(["n"])
    with pytest.raises(ValueError, match="setting names are identifiers"):
        parse_overrides(["1n=3"])


def test_config_freezes_overrides_and_stays_hashable():
    c = CheckConfig(overrides={"eps": [0.1, 0.2], "n": 3})
    assert c.overrides == (("eps", (0.1, 0.2)), ("n", 3))
    assert hash(c) == hash(CheckConfig(overrides=[("n", 3), ("eps", (0.1, 0.2))]))
    assert c.preset(P)["eps"] == [0.1, 0.2]


@pytest.fixture
def scratch(monkeypatch):
    monkeypatch.setattr(api, "_CHECKS", dict(api._CHECKS))
    monkeypatch.setattr(reg, "_load_checks", lambda: None)
    ran = []

    def check(config):
        spec = config.preset(P)
        ran.append(spec)
        return ClaimResult("X1", "holds", figures={"n": float(spec["n"])})

    api._CHECKS.pop("X1", None)
    reg.register("X1", presets=P)(check)
    return ran


def test_the_resolved_config_is_recorded_with_the_result(scratch):
    r = reg.run_check("X1", CheckConfig(overrides={"n": 7}))
    assert r.config == {"preset": "quick", "overrides": {"n": 7},
                        "resolved": {"n": 7, "eps": (1e-3, 1e-2), "model": "tiny", "fast": True, "size": (3, 5, 2)}}
    assert r.figures["n"] == 7.0


def test_an_unknown_override_is_refused_before_the_check_runs(scratch):
    with pytest.raises(ValueError, match="unknown setting 'nn'"):
        reg.run_check("X1", CheckConfig(overrides={"nn": 7}))
    assert scratch == []  # nothing ran


def test_a_check_without_presets_refuses_overrides(monkeypatch):
    monkeypatch.setattr(api, "_CHECKS", dict(api._CHECKS))
    monkeypatch.setattr(reg, "_load_checks", lambda: None)
    api._CHECKS.pop("X1", None)
    reg.register("X1")(lambda c: ClaimResult("X1", "holds"))
    with pytest.raises(ValueError, match="claim X1 declares no settings to override; got n"):
        reg.run_check("X1", CheckConfig(overrides={"n": 1}))
