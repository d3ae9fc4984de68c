"""Atomic file writes shared by every package: readers see the old file or the new one, never a part.

A file is written to a uniquely named temporary file in the same folder, flushed, then renamed over
the target with ``os.replace``; concurrent writers never share a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]


def _new_temporary(path: Path) -> tuple[int, Path]:
    """Create a uniquely named temporary file beside ``path`` with mode 0o666; the kernel applies the
    process umask (and any default ACL of the folder) to it, so its mode is a new file's default."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a unique temporary file beside {str(path)!r}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a uniquely named temporary path beside ``path``; on success it replaces ``path`` atomically.

    Readers see the old file or the new one, never a part; concurrent writers never share a
    temporary file. The new file gets the old file's permissions, or a new file's default (the
    umask applied by the kernel when the temporary file is created: the umask is never read or
    changed, so no other thread can see it altered). While being written the temporary file is
    private to its owner. On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary(path)
    try:
        default_mode = os.fstat(fd).st_mode & 0o7777  # 0o666 less the umask
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    try:
        yield tmp
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = default_mode
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path` (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
