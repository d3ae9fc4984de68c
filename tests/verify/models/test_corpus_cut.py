"""The public Appendix A.1.1 cutter (verify/corpus_cut.py) and the old private names that delegate to it."""

import pytest

from logitrank.verify.claims.checks._real_setup import text_sets
from logitrank.verify.models._corpus_cut import _word_cut, corpus_text, cut_histories_futures

TEXT = "the quick brown fox jumps over the lazy dog and runs far away " * 40


@pytest.fixture()
def path(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(TEXT)
    return str(p)


def test_cuts_are_windows_split_at_word_boundaries(path):
    H, F = cut_histories_futures(path, 20, 20, min_chars=10, max_chars=30, seed=3)
    assert len(H) == 20 and 1 <= len(F) <= 20
    assert all(10 <= len(h) <= 30 and h in TEXT for h in H)
    assert all(f[0] == " " and len(f) <= 20 and f in TEXT for f in F)  # the future starts with the space


def test_same_seed_same_sets_other_seed_other_sets(path):
    a = cut_histories_futures(path, 5, 5, min_chars=10, max_chars=30, seed=1)
    assert a == cut_histories_futures(path, 5, 5, min_chars=10, max_chars=30, seed=1)
    assert a != cut_histories_futures(path, 5, 5, min_chars=10, max_chars=30, seed=2)


def test_word_cut_by_hand():
    # boundaries (a space after a non-space) of "ab cd ef" sit at 2 and 5; the nearest to 4 is 5
    assert _word_cut("ab cd ef", 4, 1) == 5
    assert _word_cut("ab cd ef", 3, 1) == 2  # ties go to the left (cut − d first)
    assert _word_cut("abcdef", 3, 1) == 3  # no boundary: the cut stays


def test_folder_of_txt_files(tmp_path):
    (tmp_path / "a.txt").write_text("first text " * 30)
    (tmp_path / "b.txt").write_text("second text " * 30)
    assert "first" in corpus_text(str(tmp_path)) and "second" in corpus_text(str(tmp_path))


def test_private_text_sets_delegates(path):
    assert text_sets(path, 4, 4, 10, 30, 0) == cut_histories_futures(path, 4, 4, min_chars=10, max_chars=30, seed=0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"corpus": "/no/such/file"}, ValueError, "corpus must be one of"),
    ({"n_histories": 0}, ValueError, "n_histories"),
    ({"min_chars": 40, "max_chars": 30}, ValueError, "max_chars"),
    ({"n_histories": 2.5}, TypeError, "n_histories"),
    ({"n_histories": 5000}, ValueError, "too short"),
    ({"seed": -1}, ValueError, "seed"),
])
def test_bad_calls(path, kwargs, error, match):
    args = {"corpus": path, "n_histories": 3, "n_futures": 3, "min_chars": 10, "max_chars": 30, "seed": 0, **kwargs}
    corpus = args.pop("corpus")
    with pytest.raises(error, match=match):
        cut_histories_futures(corpus, args.pop("n_histories"), args.pop("n_futures"), **args)
