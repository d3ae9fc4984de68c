"""Progress of the long commands (``check``, ``sweep run``): a bar on a terminal, a few whole lines in a log.

* On a terminal (stderr is a TTY) a tqdm bar.
* Otherwise (``logitrank sweep run … > log 2>&1``, CI, a pipe) one line through :mod:`logging` (logger
  ``logitrank.progress``, level INFO) every ``every`` seconds and one when the command ends, and no bar
  at all: :func:`quiet_bars` turns off the tqdm bars drawn inside the work (the logit matrix, the
  matrix cache) for this process and, through ``TQDM_DISABLE``, for the worker processes it starts.

:func:`log_to_stderr` gives the ``logitrank.progress`` logger a handler on stderr (the CLI is the
application: it decides where its lines go; library modules only log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["Ticker", "duration", "is_terminal", "log_to_stderr", "quiet_bars"]

LOGGER = logging.getLogger("logitrank.progress")


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted (tests replace it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler sets it once; the property always answers sys.stderr
        pass


def log_to_stderr() -> None:
    """Send the progress lines (logger ``logitrank.progress``, INFO) to stderr, once per process. Other loggers
    are left as they are; an application that handles the root logger itself gets the lines there too."""
    if any(isinstance(h, _StderrHandler) for h in LOGGER.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.addHandler(handler)
    if LOGGER.level == logging.NOTSET or LOGGER.level > logging.INFO:
        LOGGER.setLevel(logging.INFO)


def is_terminal(stream=None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


@contextlib.contextmanager
def quiet_bars(enabled: bool | None = None) -> Iterator[None]:
    """No tqdm bar inside the block unless stderr is a terminal (``enabled`` forces either way).

    tqdm reads ``TQDM_DISABLE`` when it is imported, and torch imports it first; so in this process the
    default of ``tqdm.__init__``'s ``disable`` is set to True for the block (a bar that passes ``disable``
    itself keeps its choice), and ``TQDM_DISABLE=1`` is set for the worker processes started in the block.
    """
    quiet = (not is_terminal()) if enabled is None else not enabled
    if not quiet:
        yield
        return
    from functools import partialmethod

    import tqdm.std

    cls = tqdm.std.tqdm
    original = cls.__dict__["__init__"]
    func, args, keywords = (original.func, original.args, original.keywords) if isinstance(original, partialmethod) \
        else (original, (), {})
    old_env = os.environ.get("TQDM_DISABLE")
    cls.__init__ = partialmethod(func, *args, **{**keywords, "disable": True})
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        cls.__init__ = original
        if old_env is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old_env


def duration(seconds: float | None) -> str:
    """'1h02m', '5m07s', '12.3s' (or '?')."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Ticker:
    """Calls ``line()`` and logs it every ``every`` seconds from a daemon thread, until :meth:`stop`."""

    def __init__(self, line: Callable[[], str], every: float):
        self.line, self.every = line, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logitrank-progress", daemon=True)
        self.t0 = time.monotonic()

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            LOGGER.info(self.line())

    def stop(self, *, last: bool = True) -> None:
        """Stop ticking; log one last line (unless ``last`` is False)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        if last:
            LOGGER.info(self.line())
