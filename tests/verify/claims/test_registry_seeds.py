"""Seeded checks run once per seed and are judged across seeds; a raising check is an *error*."""

import pytest

from logitrank.verify import CheckConfig, ClaimResult
from logitrank.verify.claims import _check_api as api
from logitrank.verify.claims import _registry as reg


@pytest.fixture
def scratch_claim(monkeypatch):
    """Register throw-away checks under a ledger ID without disturbing the real registry."""
    monkeypatch.setattr(api, "_CHECKS", dict(api._CHECKS))  # the table of registered checks
    monkeypatch.setattr(reg, "_load_checks", lambda: None)

    def install(fn, **kw):
        api._CHECKS.pop("X1", None)
        reg.register("X1", **kw)(fn)
        return "X1"

    return install


def test_seeded_check_reports_median_and_spread(scratch_claim):
    cid = scratch_claim(lambda c: ClaimResult("X1", "holds", figures={"tv": float(c.seed), "name": "x"}, headline="tv"),
                        seeded=True, rule="holds in every seed")
    r = reg.run_check(cid, CheckConfig(seed=10, seeds=3))
    # exact: median and range of the small integers 10, 11, 12
    assert r.verdict == "holds" and r.figures == {"tv": 11.0} and r.spread == {"tv": [10.0, 12.0]}
    assert [p["setting"]["seed"] for p in r.per_seed] == [10, 11, 12] and r.setting["seeds"] == [10, 11, 12]
    assert r.rule == "holds in every seed" and r.headline == "tv"


@pytest.mark.parametrize("pattern, verdict", [("hhh", "holds"), ("fff", "fails"), ("hfh", "mixed"), ("hnh", "not-run")])
def test_verdict_across_seeds(scratch_claim, pattern, verdict):
    names = {"h": "holds", "f": "fails", "n": "not-run"}
    cid = scratch_claim(lambda c: ClaimResult("X1", names[pattern[c.seed]], figures={"a": 1.0}, reason="why"), seeded=True)
    assert reg.run_check(cid, CheckConfig(seed=0, seeds=3)).verdict == verdict


def test_quick_runs_three_seeds_full_five():
    assert CheckConfig().n_seeds == 3 and CheckConfig(scale="full").n_seeds == 5


def test_raising_check_is_error_with_last_traceback_line(scratch_claim):
    def broken(config):
        raise RuntimeError("boom at step 3")

    cid = scratch_claim(broken)
    r = reg.run_check(cid)
    assert r.verdict == "error" and r.reason == "check raised RuntimeError: boom at step 3"


def test_combine_must_return_a_verdict(scratch_claim):
    cid = scratch_claim(lambda c: ClaimResult("X1", "holds"), seeded=True, combine=lambda rs: ("great", ""))
    with pytest.raises(ValueError, match="returned verdict 'great'"):
        reg.run_check(cid, CheckConfig(seeds=1))


@pytest.mark.parametrize("kw, match", [({"seeds": 0}, "seeds must be an int in"), ({"seed": 2**70}, "seed must be an int"),
                                       ({"seeds": True}, "seeds must be")])
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        CheckConfig(**kw)


def test_figure_dir_carries_run_identity():
    assert CheckConfig(model="org/Model x", scale="full", seed=4, out_dir="r").figure_dir.as_posix() == "r/figures/org_Model_x/full/seed4"
