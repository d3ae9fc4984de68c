"""Issue 30, item 4, kept: no function in verify/ over 60 code lines or nested more than 4 deep.

A function's *code lines* are the lines of its source span (the ``def`` line to its last line, per
``ast``'s ``lineno``/``end_lineno``) less blank lines, comment-only lines and its docstring's lines;
a nested function's lines count within its parent (and the nested function is measured on its own).
Its *depth* is the deepest nesting of block statements (``if``/``for``/``while``/``with``/``try``/
``match``; ``elif``/``else``/``except``/``finally``/``case`` branches are the level of their block)
in its body: a statement directly in the body is depth 0, so ``for: if: for: if: x`` is depth 4. A
nested function or class starts again from 0 (it is measured on its own).
"""

import ast
from pathlib import Path

MAX_LINES = 60
MAX_DEPTH = 4
VERIFY = Path(__file__).resolve().parents[1] / "verify"

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (*_FUNCTIONS, ast.ClassDef)
_BLOCKS = tuple(getattr(ast, name) for name in ("For", "AsyncFor", "While", "With", "AsyncWith", "Try", "TryStar")
                if hasattr(ast, name))


def _docstring_lines(fn: ast.AST) -> set[int]:
    """The line numbers of ``fn``'s own docstring (empty where it has none)."""
    first = fn.body[0] if fn.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return set(range(first.lineno, first.end_lineno + 1))
    return set()


def code_lines(fn: ast.AST, lines: list[str]) -> int:
    """``fn``'s code lines: its span less blank, comment-only and docstring lines."""
    skip = _docstring_lines(fn)
    count = 0
    for number in range(fn.lineno, fn.end_lineno + 1):
        text = lines[number - 1].strip()
        if text and not text.startswith("#") and number not in skip:
            count += 1
    return count


def _is_elif(node: ast.If, lines: list[str]) -> bool:
    """Whether ``node``, the only statement of an ``if``'s else branch, was written ``elif``."""
    return lines[node.lineno - 1][node.col_offset:].startswith("elif")


def _branches(node: ast.stmt, lines: list[str]) -> tuple[list[list[ast.stmt]], list[ast.stmt]]:
    """A block statement's branches one level in, and the statements (elifs) at its own level."""
    if isinstance(node, ast.If):
        if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If) and _is_elif(node.orelse[0], lines):
            return [node.body], node.orelse
        return [node.body, node.orelse], []
    if isinstance(node, ast.Match):
        return [case.body for case in node.cases], []
    if isinstance(node, _BLOCKS):
        handlers = [handler.body for handler in getattr(node, "handlers", [])]
        return [node.body, *handlers, getattr(node, "orelse", []), getattr(node, "finalbody", [])], []
    return [], []


def depth(statements: list[ast.stmt], lines: list[str], level: int = 0) -> int:
    """The deepest block nesting of ``statements`` (at ``level``); nested functions and classes excluded."""
    deepest = 0
    for node in statements:
        if isinstance(node, _SCOPES):
            continue
        deepest = max(deepest, level)
        inner, same = _branches(node, lines)
        for body in inner:
            deepest = max(deepest, depth(body, lines, level + 1))
        deepest = max(deepest, depth(same, lines, level))
    return deepest


def measure(source: str, name: str) -> list[str]:
    """Every function of ``source`` (named ``name`` in the report) over the limits, as ``path:line fn (N lines, depth D)``."""
    lines = source.splitlines()
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, _FUNCTIONS):
            continue
        size, deep = code_lines(fn, lines), depth(fn.body, lines)
        if size > MAX_LINES or deep > MAX_DEPTH:
            out.append(f"{name}:{fn.lineno} {fn.name} ({size} lines, depth {deep})")
    return out


def offenders(root: Path) -> list[str]:
    """Every function under ``root`` over the limits, paths relative to ``root``'s parent."""
    out = []
    for path in sorted(root.rglob("*.py")):
        out += measure(path.read_text(), str(path.relative_to(root.parent)))
    return out


def test_no_function_in_verify_is_too_long_or_too_deep():
    found = offenders(VERIFY)
    assert not found, (f"functions over {MAX_LINES} code lines or depth {MAX_DEPTH}:\n" + "\n".join(found))


def _long_function(size: int) -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(size - 1))
    return f'def long():\n    """A docstring,\n\n    over lines."""\n    # a comment\n\n{body}'


def _deep_function(levels: int) -> str:
    blocks = ["for a in b:", "if a:", "while a:", "with a:", "try:", "if a:"][:levels]
    text = "def deep():\n"
    for i, block in enumerate(blocks):
        text += "    " * (i + 1) + block + "\n"
    text += "    " * (levels + 1) + "x = 1\n"
    if "try:" in blocks:
        i = blocks.index("try:")
        text += "    " * (i + 1) + "except ValueError:\n" + "    " * (i + 2) + "pass\n"
    return text


def test_the_measure_can_fail():
    source = _long_function(61) + "\n\n" + _deep_function(5)
    found = measure(source, "x.py")
    assert found == ["x.py:1 long (61 lines, depth 0)", "x.py:69 deep (9 lines, depth 5)"], found


def test_the_limits_themselves_pass():
    assert measure(_long_function(60) + "\n\n" + _deep_function(4), "x.py") == []


def test_branches_count_at_their_blocks_level_and_nested_functions_on_their_own():
    source = (
        "def f(a):\n"
        "    if a:\n        x = 1\n"
        "    elif a > 1:\n        for b in a:\n            if b:\n                while b:\n                    x = 2\n"
        "    else:\n        x = 3\n"
        "    def g():\n"
        "        for c in a:\n            if c:\n                for d in c:\n                    if d:\n"
        "                        with d:\n                            y = 4\n"
        "    return x\n"
    )
    lines = source.splitlines()
    tree = ast.parse(source)
    f, g = (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))
    assert depth(f.body, lines) == 4
    assert depth(g.body, lines) == 5
    assert code_lines(f, lines) == len(lines)
    assert measure(source, "x.py") == ["x.py:11 g (7 lines, depth 5)"]
