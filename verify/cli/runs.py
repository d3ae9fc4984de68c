"""``logitrank runs``: the run records of the claims store (settings, versions, wall time), newest last."""

from __future__ import annotations

from .check import add_runs_parser as add_parser
from .check import cmd_runs as run

__all__ = ["add_parser", "run"]
