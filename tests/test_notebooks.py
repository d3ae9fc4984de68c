"""The walkthroughs in notebooks/ execute top to bottom as Jupyter notebooks.

They are stored as jupytext percent scripts (diff-friendly, never holding outputs); each is
converted to a notebook in memory and run on a fresh kernel with nbclient.
"""

from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_three_walkthroughs_exist():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"], [p.name for p in NOTEBOOKS]
    assert not list((ROOT / "notebooks").glob("*.ipynb")), "commit notebooks as jupytext .py scripts (no outputs)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path):
    nb = jupytext.read(path)
    assert any(c.cell_type == "markdown" for c in nb.cells) and any(c.cell_type == "code" for c in nb.cells)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
