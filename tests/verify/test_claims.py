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
