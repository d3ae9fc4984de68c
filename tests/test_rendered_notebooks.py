"""docs/notebooks/ holds each walkthrough executed, with its outputs (issue 24), and never a stale copy:
the code cells of every rendered notebook equal those of its current jupytext script."""

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_rendered_copy_is_current_and_executed(path):
    rendered = ROOT / "docs" / "notebooks" / f"{path.stem}.ipynb"
    assert rendered.is_file(), f"run `.venv/bin/python docs/render_notebooks.py {path.stem}`"
    nb = nbformat.read(rendered, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code == [c.source for c in jupytext.read(path).cells if c.cell_type == "code"], (
        f"{rendered.name} is stale: run `.venv/bin/python docs/render_notebooks.py {path.stem}`")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.get("output_type") == "error"]
    draws = any(word in path.read_text() for word in ("plt.", "plot_", ".show()"))
    assert not draws or any("image/png" in o.get("data", {}) for o in outputs)  # a notebook that draws shows it
