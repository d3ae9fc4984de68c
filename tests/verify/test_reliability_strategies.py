"""Issue 24: a failing hypothesis example drawn from logitrank's strategies prints as a call that can be
pasted: evaluated with the public names, it rebuilds the very model that failed."""

import ast
import re

import pytest
import torch
from hypothesis import given, settings

from logitrank import synth
from logitrank.synth import strategies as sts

STRATEGIES = {
    "isans": sts.isans(),
    "isans float32": sts.isans(dtype=torch.float32, scale=0.5, min_horizon=3),
    "noisy_parities": sts.noisy_parities(),
    "copyings": sts.copyings(),
    "linear_ssms": sts.linear_ssms(),
    "power_law_isans": sts.power_law_isans(),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_falsifying_example_is_a_pasteable_call(name):
    seen = []

    @settings(max_examples=3, database=None)
    @given(STRATEGIES[name])
    def fails(model):
        seen.append(model)
        raise AssertionError("planted failure")

    with pytest.raises(AssertionError) as info:
        fails()
    note = next(n for n in getattr(info.value, "__notes__", []) if n.startswith("Falsifying example") or "model=" in n)
    source = re.sub(r"#[^\n]*", "", note[note.index("fails(") :])  # drop hypothesis' comments
    call = ast.parse(source).body[0].value.keywords[0].value
    rebuilt = eval(ast.unparse(call), {"torch": torch, **{k: getattr(synth, k) for k in synth.__all__}})  # the pasted call, as a user would paste it
    assert repr(rebuilt) == repr(seen[-1])
    assert torch.equal(rebuilt.logits([[]]), seen[-1].logits([[]]))  # exact: same constructor, same literal arguments
