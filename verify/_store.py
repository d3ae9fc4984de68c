"""One SQLite results database for logitrank runs: connections and provenance.

Sweeps (:mod:`logitrank.verify.experiments.sweep`) and claim runs (``logitrank check``) keep their results in
the same database file (default :data:`DEFAULT_STORE`, ``results/logitrank.sqlite``), each in its
own tables. This module holds what both share:

* :func:`connect` opens (creating folders and file as needed) a connection in WAL mode with a busy
  timeout, so a reader (``logitrank sweep show``) never blocks the one writer, and a second writer
  waits instead of failing at once. Each table owner creates its own tables with
  ``CREATE TABLE IF NOT EXISTS`` and records its schema version through :func:`schema_version`.
* :func:`row_digest` is the checksum each stored row carries in its ``digest`` column, verified on
  read (SQLite's own integrity check passes a row whose digits were altered; this does not).
* :func:`provenance` says what produced a row: package version, git SHA of the source tree when it
  is a git checkout, and the versions of python, numpy, torch and transformers (``None`` when not
  installed). Rows store it as JSON text.

Crash safety: SQLite commits are atomic and durable, so a writer killed with ``kill -9`` loses at
most the rows it had not committed yet; commit once per finished unit of work.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import sqlite3
import subprocess
from pathlib import Path

__all__ = ["DEFAULT_STORE", "connect", "provenance", "provenance_json", "row_digest", "schema_version"]

#: the default database file, relative to the working directory
DEFAULT_STORE = Path("results") / "logitrank.sqlite"
#: seconds a connection waits on a lock held by another writer before raising
BUSY_TIMEOUT_S = 60.0


def connect(path: str | os.PathLike = DEFAULT_STORE, *, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open the results database at ``path`` (created with its folders when missing).

    The connection uses WAL journaling (readers do not block the writer), ``synchronous=NORMAL``
    (durable across a process kill; an OS crash may lose the last commits, never corrupt the file),
    a busy timeout of ``timeout`` seconds, foreign keys on, and rows as :class:`sqlite3.Row`.

    Parameters
    ----------
    path : file path of the database; ``":memory:"`` for a private in-memory one
    timeout : seconds to wait for another writer's lock

    Returns
    -------
    sqlite3.Connection
        Autocommit off (Python's default): call ``conn.commit()`` after each unit of work, or use
        ``with conn:`` which commits on success and rolls back on error.

    Examples
    --------
    >>> conn = connect(":memory:")
    >>> conn.execute("PRAGMA foreign_keys").fetchone()[0]
    1
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"timeout must be a number of seconds >= 0; got {timeout!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming the database file; got {type(path).__name__}")
    memory = str(path) == ":memory:"
    if not memory:
        path = Path(path)
        if path.exists() and path.is_dir():
            raise ValueError(f"path must name a database file, not a folder; got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=float(timeout))
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if not memory:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"could not switch {str(path)!r} to WAL journaling (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as err:
        conn.close()
        raise ValueError(f"path {str(path)!r} is not a usable SQLite database: {err} (name another file, or move "
                         "this one aside and rerun to start a new one)") from err
    conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    conn.commit()
    return conn


def schema_version(conn: sqlite3.Connection, component: str, version: int) -> None:
    """Record that ``component``'s tables follow schema ``version``; refuse a database written by another.

    Call once after creating the component's tables. Raises ``RuntimeError`` when the file holds
    a different version of that component's schema (never migrates silently).

    Examples
    --------
    >>> conn = connect(":memory:")
    >>> schema_version(conn, "sweep", 1)
    >>> schema_version(conn, "sweep", 1)  # same version: fine
    """
    row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    if row is None:
        with conn:
            conn.execute("INSERT OR IGNORE INTO schema_versions VALUES (?, ?)", (component, int(version)))
        row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    if int(row[0]) != int(version):
        raise RuntimeError(f"the database holds {component!r} tables of schema version {row[0]}; this logitrank "
                           f"reads version {version}. Use another --store file or remove the old one.")


def row_digest(*values) -> str:
    """Hex sha256 of a stored row's values (its payload), for a ``digest`` column verified on read.

    The values are hashed as compact JSON (floats by ``repr``, so a REAL read back from SQLite hashes
    the same; NaN, which SQLite stores as NULL, as None), so one flipped digit in any value changes
    the digest. Pass the values in a fixed column order, as they are stored.

    Examples
    --------
    >>> row_digest(3, "T3", 0.25) == row_digest(3, "T3", 0.25), row_digest(3, "T3", 0.25) == row_digest(3, "T3", 0.75)
    (True, False)
    """
    norm = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    text = json.dumps(norm, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _git_sha() -> str | None:
    """SHA of HEAD of the git checkout holding this source file (``+dirty`` when it has changes); None outside git."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + "+dirty") if dirty else (sha or None)


@functools.lru_cache(maxsize=1)
def provenance() -> dict:
    """What produced a result: versions of logitrank and its engines, and the git SHA.

    Returns
    -------
    dict
        ``{"logitrank", "git_sha", "python", "numpy", "torch", "transformers"}``; a value is
        ``None`` when unknown (no git checkout, package not installed). Computed once per process.

    Examples
    --------
    >>> sorted(provenance())
    ['git_sha', 'logitrank', 'numpy', 'python', 'torch', 'transformers']
    """
    return {
        "logitrank": _dist_version("logitrank"),
        "git_sha": _git_sha(),
        "python": platform.python_version(),
        "numpy": _dist_version("numpy"),
        "torch": _dist_version("torch"),
        "transformers": _dist_version("transformers"),
    }


def provenance_json() -> str:
    """:func:`provenance` as compact, key-sorted JSON text (for a TEXT column)."""
    return json.dumps(provenance(), sort_keys=True, separators=(",", ":"))
