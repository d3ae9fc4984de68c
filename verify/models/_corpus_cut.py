"""Histories and futures cut from text as in paper A, Appendix A.1.1 (public API).

Paper A builds the rows and columns of its extended logit matrices from natural text: draw
distinct windows of ℓ_max characters, draw a cut point ℓ ∈ [ℓ_min, ℓ_max] per window, and split the
window there — the part before the cut is a history, the part after it a future. Lengths are in
*characters*, so one set of strings serves models with different tokenizers (the rows of two
models' matrices are then the same texts, as paper A's Fig 11 needs).

Deviation (stated): the cut is moved to the word boundary nearest to ℓ inside [ℓ_min, ℓ_max]
(the future starts with the space), so no token is split across h and f; empty futures are dropped
(paper A, footnote 6), so |F| may be slightly below the request.

Corpora by name: ``"shakespeare"`` (the held-out plays of the tiny model's training split) and
``"docstrings"`` (Python standard-library docstrings, ASCII); any other string is a path to a
UTF-8 text file or a folder of ``*.txt`` files (read in sorted order, joined by blank lines).
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import numpy as np

from logitrank._validation import check_int

__all__ = ["CORPUS_NAMES", "corpus_text", "cut_histories_futures", "token_sets", "truncate_pairs"]

#: Corpora known by name (anything else is read as a path).
CORPUS_NAMES = ("shakespeare", "docstrings")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


@functools.lru_cache(maxsize=4)
def corpus_text(corpus: str) -> str:
    """The text of a corpus: a name in :data:`CORPUS_NAMES` or a path to a text file / folder of ``*.txt``.

    Raises
    ------
    ValueError
        For a string that is neither a known name nor an existing file or folder with text.
    """
    if not isinstance(corpus, str) or not corpus:
        raise TypeError(f"corpus must be a name {CORPUS_NAMES} or a path; got {corpus!r}")
    from ._corpora import python_docstrings, shakespeare_split

    if corpus == "shakespeare":
        _, held = shakespeare_split()
        return "\n\n".join(held.values())
    if corpus == "docstrings":
        return _ascii("\n\n".join(python_docstrings()))
    path = Path(corpus)
    if path.is_file():
        return _text_of(path, f"corpus file {corpus!r}")
    if path.is_dir():
        files = sorted(f for f in path.rglob("*.txt") if f.is_file())
        if not files:
            raise ValueError(f"corpus folder {corpus!r} holds no *.txt files (text files are found by that suffix, "
                             "in subfolders too)")
        text = "\n\n".join(_text_of(f, f"corpus file {str(f)!r}", allow_empty=True) for f in files)
        if not text.strip():
            raise ValueError(f"corpus folder {corpus!r}: its {len(files)} *.txt file(s) hold no text (empty or only "
                             "whitespace)")
        return text
    raise ValueError(f"corpus must be one of {CORPUS_NAMES} or an existing text file or folder; got {corpus!r}")


def _text_of(path: Path, what: str, *, allow_empty: bool = False) -> str:
    """The UTF-8 text of ``path`` (undecodable bytes replaced); refuses binary data and, unless
    ``allow_empty``, a file with no text."""
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise ValueError(f"{what} is not text (it holds NUL bytes); give a UTF-8 text file")
    text = data.decode("utf-8", errors="replace")
    if not allow_empty and not text.strip():
        raise ValueError(f"{what} holds no text ({'empty' if not data else 'only whitespace'}); give a text file "
                         "with at least a few hundred characters")
    return text


def _word_cut(window: str, cut: int, lo: int) -> int:
    """The word boundary in [lo, len(window)) nearest to ``cut`` (the future starts with the space)."""
    for d in range(len(window)):
        for p in (cut - d, cut + d):
            if lo <= p < len(window) and p > 0 and window[p].isspace() and not window[p - 1].isspace():
                return p
    return cut


def cut_histories_futures(corpus: str, n_histories: int, n_futures: int, *, min_chars: int, max_chars: int,
                          seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(H, F) as tuples of strings cut from ``corpus`` as in paper A, Appendix A.1.1.

    Parameters
    ----------
    corpus : str
        A name in :data:`CORPUS_NAMES`, or a path (module docstring).
    n_histories, n_futures : int >= 1
        |H| and the number of windows for F (empty futures are dropped, so |F| <= n_futures).
    min_chars, max_chars : int
        ℓ_min and ℓ_max in characters, 1 <= ℓ_min <= ℓ_max.
    seed : int
        Seeds ``numpy.random.default_rng``: same seed, same sets.

    Returns
    -------
    H : (n_histories,) tuple of str
        Prefixes of n_histories distinct windows, each of min_chars … max_chars characters.
    F : (<= n_futures,) tuple of str
        Remainders of n_futures further windows (nonempty).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.txt")
    >>> _ = open(path, "w").write("the quick brown fox jumps over the lazy dog " * 20)
    >>> H, F = cut_histories_futures(path, 3, 3, min_chars=5, max_chars=20, seed=0)
    >>> len(H), all(5 <= len(h) <= 20 for h in H), all(f[0] == " " for f in F)
    (3, True, True)
    """
    n_histories = check_int("n_histories", n_histories, minimum=1)
    n_futures = check_int("n_futures", n_futures, minimum=1)
    min_chars = check_int("min_chars", min_chars, minimum=1)
    max_chars = check_int("max_chars", max_chars, minimum=min_chars)
    seed = check_int("seed", seed, minimum=0)
    text = corpus_text(corpus)
    total = n_histories + n_futures
    if len(text) - max_chars + 1 < total:
        raise ValueError(
            f"corpus {corpus!r} has {len(text)} characters: too short for {total} distinct windows of "
            f"max_chars={max_chars}; use a smaller n or a longer text"
        )
    rng = np.random.default_rng(seed)
    starts = rng.choice(len(text) - max_chars + 1, size=total, replace=False)
    cuts = rng.integers(min_chars, max_chars + 1, size=total)
    H, F = [], []
    for i, (s, c) in enumerate(zip(starts, cuts)):
        window = text[s : s + max_chars]
        p = _word_cut(window, int(c), min_chars)
        if i < n_histories:
            H.append(window[:p])
        elif window[p:]:
            F.append(window[p:])
    return tuple(H), tuple(F)


# -- corpus texts as token sequences of a model (Appendix A.1.1's histories and futures) -----------------
def token_sets(model, H_text, F_text):
    """Encode strings with the model's tokenizer; pairs that overflow ``max_length`` are trimmed."""
    H = [tuple(model.encode(h)) for h in H_text]
    F = [tuple(model.encode(f)) for f in F_text]
    _check_encodes(model, [*H_text, *F_text], [*H, *F])
    return truncate_pairs(model, H, F)


def _check_encodes(model, texts, encoded) -> None:
    """Refuse a tokenizer that cannot encode the corpus (e.g. a model folder without tokenizer files)."""
    empty = sum(1 for t, e in zip(texts, encoded) if t.strip() and not e)
    ids = {i for e in encoded for i in e}
    name = getattr(model, "name", type(model).__name__)
    if empty:
        raise ValueError(f"the tokenizer of model {name!r} encodes {empty} of {len(texts)} non-empty corpus texts to "
                         "no tokens: it cannot encode the corpus (a model folder without tokenizer files?)")
    if len(ids) == 1 and sum(map(len, encoded)) > len(encoded):
        raise ValueError(f"the tokenizer of model {name!r} encodes the whole corpus to the single token id "
                         f"{ids.pop()}: it cannot encode the corpus (a model folder without tokenizer files?)")


def truncate_pairs(model, H, F):
    """Trim futures so that every history ∘ future fits the model's ``max_length`` (start token included)."""
    limit = getattr(model, "max_length", None)
    if limit is None:
        return H, F
    room = limit - (0 if getattr(model, "bos_token_id", None) is None else 1) - max(map(len, H))
    if room < 1:
        raise ValueError(f"histories of {max(map(len, H))} tokens leave no room in max_length={limit}")
    return H, [f[:room] for f in F]
