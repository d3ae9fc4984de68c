"""The training presets of ``logitrank train-tiny`` (issue 15 item 3: the mid-size preset)."""

import torch

from logitrank.verify.models import TinyGPT
from logitrank.verify.models._train import TINY_TRAINING


def test_mid_preset_is_a_few_million_parameters_with_step_zero():
    cfg = TINY_TRAINING["mid"]
    net = TinyGPT(cfg.model, generator=torch.Generator().manual_seed(0))
    assert 1_000_000 <= net.n_params() <= 5_000_000
    assert cfg.checkpoints[0] == 0 and list(cfg.checkpoints) == sorted(cfg.checkpoints)
    assert net.n_params() > 5 * TinyGPT(TINY_TRAINING["a"].model, generator=torch.Generator().manual_seed(0)).n_params()
