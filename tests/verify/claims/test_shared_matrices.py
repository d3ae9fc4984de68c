"""Issue 32, item 2: claims that read the same L(H, F) share one forward of the model."""

import torch

from logitrank.verify import CheckConfig
from logitrank.verify.claims.checks import _real_setup as rs
from logitrank.verify.models import load_model


def _fresh(monkeypatch, tmp_path):
    monkeypatch.setattr(rs, "_MEMO", {})
    monkeypatch.setattr(rs, "_STATS", {"matrices": 0, "cells": 0})
    monkeypatch.setattr(rs, "FULL_MATRIX_BYTES", 0)  # force the column path (as for SmolLM2 and Gemma-3)
    return CheckConfig(scale="quick", out_dir=str(tmp_path))


def test_three_column_choices_of_one_matrix_take_one_forward(monkeypatch, tmp_path):
    config = _fresh(monkeypatch, tmp_path)
    model = load_model("tiny")
    H = [(1, 2, 3), (4, 5), (6,), (7, 8, 9, 10)]
    F = [(11, 12), (13,), (14, 15, 16)]
    rs.prefetch(model, H, F, [("top", 8), ("random:3", 4)], config=config)
    L4, c4 = rs.matrix(model, H, F, select="top", config=config, k=4)
    L8, c8 = rs.matrix(model, H, F, select="top", config=config, k=8)
    Lr, _ = rs.matrix(model, H, F, select="random:3", config=config, k=4)
    assert rs.matrix_stats() == {"matrices": 1, "cells": len(H) * len(F)}
    assert torch.equal(c8[:, :4], c4)  # integer token ids: the top columns are a decreasing prefix
    # each equals the matrix computed on its own (one forward per selection), to float rounding
    monkeypatch.setattr(rs, "_MEMO", {})
    for L, sel, k in ((L8, "top", 8), (L4, "top", 4), (Lr, "random:3", 4)):
        alone, _ = rs.matrix(model, H, F, select=sel, config=CheckConfig(scale="quick", out_dir=str(tmp_path / sel / str(k))), k=k)
        assert L.shape == alone.shape and torch.allclose(L, alone, atol=1e-5, rtol=1e-5)
    assert rs.matrix_stats()["matrices"] == 1 + 2  # top-8 alone, then top-4 sliced from it, random-4 alone
