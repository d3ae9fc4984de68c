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


def test_overlapping_selections_share_one_forward_and_equal_their_own_matrices(monkeypatch, tmp_path):
    """Random columns that are also top columns (certain here: 64 random of 256 beside the top 32) are
    asked once per row; each selection still equals its own matrix (the N = 256 SmolLM2 ledger met this)."""
    config = _fresh(monkeypatch, tmp_path)
    model = load_model("tiny")
    H = [(1, 2, 3), (4, 5), (6,), (7, 8, 9, 10)]
    F = [(11, 12), (13,), (14, 15, 16)]
    top = rs._columns(model, F, "top", 32)
    rnd = rs._columns(model, F, "random:5", 64)
    assert any(set(top[j].tolist()) & set(rnd[j].tolist()) for j in range(len(F)))  # the case under test
    rs.prefetch(model, H, F, [("top", 32), ("random:5", 64)], config=config)
    Lt, _ = rs.matrix(model, H, F, select="top", config=config, k=32)
    Lr, _ = rs.matrix(model, H, F, select="random:5", config=config, k=64)
    assert rs.matrix_stats()["matrices"] == 1
    monkeypatch.setattr(rs, "_MEMO", {})
    for L, sel, k in ((Lt, "top", 32), (Lr, "random:5", 64)):
        alone, _ = rs.matrix(model, H, F, select=sel, config=CheckConfig(scale="quick", out_dir=str(tmp_path / sel)), k=k)
        assert L.shape == alone.shape and torch.allclose(L, alone, atol=1e-5, rtol=1e-5)


def test_union_columns_are_distinct_per_row_and_locate_every_selection():
    a = torch.tensor([[1, 2, 3], [4, 5, 6]])
    b = torch.tensor([[3, 9], [7, 4]])
    union, (pa, pb) = rs._union_columns([a, b], 16)
    assert union.shape == (2, 4)
    assert all(len(set(row.tolist())) == 4 for row in union)
    assert torch.equal(union.gather(1, pa), a) and torch.equal(union.gather(1, pb), b)  # exact: integer ids
