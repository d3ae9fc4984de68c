"""Every claim check reads its settings from one table of presets (issue 22): declared, consistent,
JSON-friendly, overridable with ``CheckConfig(overrides=...)`` and refused with the nearest key.

Only fast checks run here (T3 on one tiny ISAN); the rest is read from the registry and the tables.
"""

import json
import re
from pathlib import Path

import pytest

import logitrank.verify.claims.checks._isan_claims as isan_claims
from logitrank.verify import CheckConfig, registered, run_check
from logitrank.verify._presets import Presets
from logitrank.verify.claims import _check_api as api
from logitrank.verify.claims.checks import _real_setup, _real_structure_claims, _spectral_claims

CHECKS_DIR = Path(_real_setup.__file__).parent


def _tables() -> dict[str, Presets]:
    registered()  # loads every check module
    return {cid: api._CHECKS[cid].presets for cid in registered()}


def _json_friendly(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_json_friendly(v) for v in value)
    return isinstance(value, (bool, int, float, str))


def test_every_registered_check_declares_presets():
    tables = _tables()
    assert len(tables) >= 35
    assert [cid for cid, table in tables.items() if table is None] == []
    assert all(isinstance(table, Presets) for table in tables.values())


@pytest.mark.parametrize("cid", sorted(_tables()))
def test_every_preset_has_the_same_json_friendly_keys(cid):
    table = _tables()[cid]
    assert {"quick", "full"} <= set(table.names)
    for name in table.names:
        preset = table[name]
        assert sorted(preset) == table.keys, (cid, name)
        assert all(_json_friendly(v) for v in preset.values()), (cid, name, preset)
        json.dumps(preset)
        assert all(key.isidentifier() for key in preset), (cid, name)  # every key is a --set target


def test_no_check_branches_on_the_scale_or_indexes_a_table_by_it():
    offenders = [f"{path.name}:{i}: {line.strip()}" for path in sorted(CHECKS_DIR.glob("*.py"))
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"config\.scale\s*[!=]=|\[config\.scale\]", line)]
    assert offenders == []


# -- overrides change what runs, and are recorded ------------------------------------------------------
def test_an_override_changes_what_t3_runs_and_is_recorded(tmp_path):
    default = run_check("T3", CheckConfig(out_dir=str(tmp_path)))
    small = run_check("T3", CheckConfig(out_dir=str(tmp_path), overrides={"sizes": [(2, 4, 2)], "draws": 1}))
    assert default.setting["models"] == 12 and default.config["resolved"]["draws"] == 3
    assert small.verdict == "holds", small.reason
    assert small.config["overrides"] == {"sizes": ((2, 4, 2),), "draws": 1}
    assert small.config["resolved"] == {"sizes": ((2, 4, 2),), "draws": 1}
    assert small.setting["models"] == 1
    assert [(r["V"], r["T"], r["d"], r["hidden dim"]) for r in small.figures["per model"]] == [(2, 4, 2, 8)]


def test_the_full_preset_is_what_the_full_scale_reads():
    assert CheckConfig(scale="full").preset(isan_claims._ISAN) == isan_claims._ISAN["full"]
    assert CheckConfig(scale="full", overrides={"draws": 2}).preset(isan_claims._ISAN)["draws"] == 2


@pytest.mark.parametrize("claim, overrides, message", [
    ("T3", {"draw": 1}, r"unknown setting 'draw' for this experiment \(did you mean 'draws'\?\)"),
    ("T3", {"draws": 1.5}, r"setting draws must be int; got 1.5"),
    ("T3", {"sizes": 3}, r"setting sizes must be a list like"),
    ("T8", {"noisy_xis": [1e-6]}, r"did you mean 'noisy_xi'\?"),
    ("E1", {"kk": 200}, r"unknown setting 'kk' for this experiment \(did you mean 'k'\?\)"),
    ("E8", {"rr": 10}, r"did you mean 'r'\?"),
    ("X4", {"vocabs": 3}, r"did you mean 'vocab'\?"),
])
def test_a_bad_override_is_refused_before_the_check_runs(claim, overrides, message, monkeypatch, tmp_path):
    ran = []
    monkeypatch.setattr(isan_claims, "_models", lambda *a: ran.append(a) or iter(()))
    with pytest.raises(ValueError, match=message):
        run_check(claim, CheckConfig(out_dir=str(tmp_path), overrides=overrides))
    assert ran == []


# -- the real-model sizes: one table, presets per model kind --------------------------------------------
@pytest.mark.parametrize("model, scale, preset", [
    ("tiny", "quick", "quick"), ("tiny@step0", "full", "full"), ("tiny-b", "quick", "quick"),
    ("smollm2", "quick", "quick-hf"), ("some/hf-model", "full", "full-hf"),
])
def test_the_real_model_preset_follows_the_model_kind(model, scale, preset):
    config = CheckConfig(model=model, scale=scale)
    assert _real_setup.real_preset(config) == preset
    assert _real_setup.sizes_for(config) == _real_setup.Sizes(**_real_setup.REAL_SIZES[preset])


def test_real_model_overrides_reach_the_sizes_and_e8_extends_the_shared_table():
    S = _real_setup.sizes_for(CheckConfig(overrides={"n": 64, "k": 8}))
    assert (S.n, S.k, S.max_chars) == (64, 8, 38)
    e8 = _real_structure_claims._E8
    for name in e8.names:
        spec = e8[name]
        assert {k: v for k, v in spec.items() if k != "r"} == _real_setup.REAL_SIZES[name]
        assert spec["r"] == (20 if name.startswith("quick") else 50)
    with pytest.raises(ValueError, match=r"setting min_chars must be <= max_chars=38; got 40"):
        _real_setup.sizes_for(CheckConfig(overrides={"min_chars": 40}))


def test_paper_presets_carry_paper_a_sizes():
    paper = _real_setup.REAL_SIZES["paper"]
    assert (paper["n"], paper["k"], paper["min_chars"], paper["max_chars"]) == (10000, 50, 50, 200)  # App. A.1.2
    assert (paper["lingen_histories"], paper["lingen_futures"], paper["lingen_min"], paper["lingen_max"]) == (
        40000, 10000, 8, 30)  # App. A.3
    assert (paper["targets"], paper["samples"], paper["new_tokens"]) == (50, 5, 15)  # §3.3
    assert _spectral_claims._E12["paper"] == {"n": 10000, "k": 50}
    assert _real_setup.Sizes.of(paper).n_checkpoint == 4000  # §3.1, Fig 3
