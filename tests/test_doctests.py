"""Run every docstring example of the installed package, one test per module.

The examples are collected through the installed names (``logitrank.synth._isan``, …) rather than
by file path, so each module is imported exactly once under exactly one name.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import logitrank

#: old import paths kept for one release (they warn on import; tests/verify/test_deprecated_paths.py)
DEPRECATED = {"logitrank.verify.api", "logitrank.verify.sweep", "logitrank.verify.checks", "logitrank.verify.corpus_cut"}


def _module_names() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # walking imports the deprecated aliases too
        names = _walk()
    return sorted(n for n in set(names) - DEPRECATED if not n.endswith(".__main__"))  # __main__ runs on import


def _walk() -> list[str]:
    names = ["logitrank"]
    for info in pkgutil.walk_packages(logitrank.__path__, prefix="logitrank."):
        names.append(info.name)
    # subpackages mapped from other folders (package-dir) are walked through their own __path__
    for sub in ("synth", "algorithms", "verify"):
        pkg = importlib.import_module(f"logitrank.{sub}")
        names.append(pkg.__name__)
        names += [i.name for i in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}.")]
    return names


MODULES = _module_names()


def test_every_subpackage_is_walked():
    for sub in ("synth", "algorithms", "verify", "verify.claims.checks", "verify.models", "verify.models.served",
                "verify.experiments", "verify.experiments.sweep", "verify.figures", "verify.cli"):
        assert f"logitrank.{sub}" in MODULES
    assert len(MODULES) > 40


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
