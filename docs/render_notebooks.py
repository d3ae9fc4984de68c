"""Render the walkthroughs of notebooks/ (jupytext scripts, no outputs) to executed notebooks in docs/notebooks/.

A reader sees the figures and printed numbers without running anything; the test suite still executes
the scripts themselves (tests/test_notebooks.py) and checks that each rendered copy holds the current
code (tests/test_rendered_notebooks.py), so a stale rendering fails CI. Run after editing a notebook:

    .venv/bin/python docs/render_notebooks.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "notebooks"


def render(path: Path) -> Path:
    nb = jupytext.read(path)
    with tempfile.TemporaryDirectory() as work:  # the notebooks write their results here, not into the repo
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": work}}).execute()
    for cell in nb.cells:  # reproducible files: no execution timestamps
        cell.get("metadata", {}).pop("execution", None)
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"{path.stem}.ipynb"
    nbformat.write(nb, target)
    return target


def main(names: list[str]) -> int:
    paths = sorted((ROOT / "notebooks").glob("*.py"))
    for path in paths:
        if names and path.stem not in names and path.stem[:2] not in names:
            continue
        print(f"rendered {render(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
