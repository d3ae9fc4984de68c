"""Every theorem-style claim check holds at the quick scale (the demo's verdicts, guarded in CI).

These run the same code as ``logitrank check`` so a regression in a check or in what it measures
turns CI red. Real-model experiments (E1–E11) are exercised by their own tests on small models.
"""

import pytest

from logitrank.verify import CheckConfig, registered, run_check

EXPECTED_TO_HOLD = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T12", "T13", "B1", "B2", "B4", "E12", "X3"]


@pytest.mark.parametrize("claim_id", EXPECTED_TO_HOLD)
def test_claim_holds_at_quick_scale(claim_id, tmp_path):
    assert claim_id in registered()
    result = run_check(claim_id, CheckConfig(out_dir=str(tmp_path)))
    assert result.verdict == "holds", f"{claim_id}: {result.reason}\n{result.figures}"


def test_user_seeded_claim_is_judged_across_seeds(tmp_path):
    from logitrank.verify import ClaimResult, register
    from logitrank.verify.claims._registry import unregister

    @register("USER-SEEDED", seeded=True, statement="odd seeds hold", rule="holds when the seed is odd, per seed")
    def odd(config):
        return ClaimResult("USER-SEEDED", "holds" if config.seed % 2 else "fails", figures={"seed": float(config.seed)},
                           headline="seed")

    try:
        result = run_check("USER-SEEDED", CheckConfig(out_dir=str(tmp_path), seed=1, seeds=3))
        assert result.verdict == "mixed" and result.setting["seeds"] == [1, 2, 3]
        assert result.figures["seed"] == 2.0 and result.spread["seed"] == [1.0, 3.0]  # exact: median/range of 1, 2, 3
        assert result.rule == "holds when the seed is odd, per seed"
        assert run_check("USER-SEEDED", CheckConfig(out_dir=str(tmp_path), seed=1, seeds=1)).verdict == "holds"
    finally:
        unregister("USER-SEEDED")
