"""Issue 20's audit, kept: a bitwise float assertion in tests/ must say why it is exact.

A comparison with ``atol=0``, ``torch.equal`` or ``np.array_equal`` holds on every CPU only where the
code guarantees it (a copy, a gather, integer arithmetic, the same computation rerun). Each such line,
or one of the six lines above it, must name the reason with the word "exact" (or "integer" for token
tensors); anything else belongs under a tolerance derived from dtype and size.
"""

import re
from pathlib import Path

PATTERN = re.compile(r"atol=0\b(?!\.)|torch\.equal\(|np\.array_equal\(")
WINDOW = 6


def unexplained(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        if path.name == Path(__file__).name:  # this file's own fixtures
            continue
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if not PATTERN.search(line) or line.lstrip().startswith(("#", "PATTERN")) or "not torch.equal" in line:
                continue
            context = " ".join(lines[max(0, i - WINDOW): i + 1]).lower()
            if "exact" not in context and "integer" not in context:
                out.append(f"{path.relative_to(root.parent)}:{i + 1}: {line.strip()}")
    return out


def test_every_bitwise_float_assertion_names_why_it_is_exact():
    missing = unexplained(Path(__file__).parent)
    assert not missing, "bitwise comparisons without a reason:\n" + "\n".join(missing)


def test_the_guard_can_fail(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("import torch\n\n\n\n\n\n\n\nassert torch.equal(a, b)\n")
    assert len(unexplained(tmp_path / "tests")) == 1
    (tmp_path / "tests" / "test_x.py").write_text("import torch\nassert torch.equal(a, b)  # exact: a copy\n")
    assert unexplained(tmp_path / "tests") == []
