"""A model folder without tokenizer files is detected when the corpus is encoded (issue 12 item 6)."""

import pytest

from logitrank.verify.claims.checks import _real_setup


class _Fake:
    name = "fake"
    max_length = None

    def __init__(self, encode):
        self.encode = encode


def test_tokenizer_that_encodes_to_nothing_is_refused():
    with pytest.raises(ValueError, match=r"tokenizer of model 'fake' encodes 2 of 2 non-empty corpus texts to no tokens: "
                                         r"it cannot encode the corpus"):
        _real_setup.token_sets(_Fake(lambda text: []), ["to be or"], ["not to be"])


def test_tokenizer_that_maps_everything_to_one_id_is_refused():
    with pytest.raises(ValueError, match=r"encodes the whole corpus to the single token id 0"):
        _real_setup.token_sets(_Fake(lambda text: [0] * len(text.split())), ["to be or"], ["not to be"])


def test_a_working_tokenizer_passes():
    H, F = _real_setup.token_sets(_Fake(lambda text: [ord(c) % 7 for c in text]), ["ab"], ["cd"])
    assert H == [(6, 0)] and F == [(1, 2)]


def test_hf_folder_without_tokenizer_files(tmp_path):
    transformers = pytest.importorskip("transformers")  # optional extra: the detection above is the core
    from logitrank.verify.models._hf import HFCausalLM

    cfg = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=300, bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path / "m")
    model = HFCausalLM(str(tmp_path / "m"))  # transformers builds a tokenizer that encodes every text to []
    with pytest.raises(ValueError, match=r"cannot encode the corpus \(a model folder without tokenizer files\?\)"):
        _real_setup.token_sets(model, ["To be, or not to be"], ["that is the question"])
