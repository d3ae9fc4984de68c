"""Old import paths (before verify/ was split into rooms) keep working for one release, with a warning."""

import importlib
import sys

import pytest

OLD_TO_NEW = [
    ("logitrank.verify.api", "APIModel", "logitrank.verify.models"),
    ("logitrank.verify.api", "hidden_width", "logitrank.verify.experiments"),
    ("logitrank.verify.sweep", "SweepSpec", "logitrank.verify.experiments"),
    ("logitrank.verify.sweep", "run_sweep", "logitrank.verify.experiments"),
    ("logitrank.verify.corpus_cut", "cut_histories_futures", "logitrank.verify.models"),
]


@pytest.mark.parametrize("old, name, new", OLD_TO_NEW)
def test_old_path_warns_and_gives_the_same_object(old, name, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=old.replace(".", r"\.") + " is deprecated"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_old_checks_path_warns_and_registers():
    sys.modules.pop("logitrank.verify.checks", None)
    with pytest.warns(DeprecationWarning, match="logitrank.verify.checks is deprecated"):
        importlib.import_module("logitrank.verify.checks")
    from logitrank.verify import registered

    assert {"T1", "E1", "B5"} <= set(registered())


def test_the_new_paths_do_not_warn(recwarn):
    for name in ("logitrank.verify.models", "logitrank.verify.experiments", "logitrank.verify.claims",
                 "logitrank.verify.figures", "logitrank.verify.cli"):
        importlib.reload(importlib.import_module(name))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning) and "logitrank" in str(w.message)]
