"""Issue 22: the import picture, checked from the source.

Every module of the three packages (and ``logitrank/`` itself) is parsed; each ``import`` inside the
package — at the top or inside a function — is an edge. The graph must have no cycle, and the
layers must point one way: synth → algorithms → verify (synth imports neither, algorithms does not
import verify).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"logitrank": ROOT / "logitrank", "logitrank.synth": ROOT / "synth",
            "logitrank.algorithms": ROOT / "algorithms", "logitrank.verify": ROOT / "verify"}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    return [base, *(f"{base}.{a.name}" for a in node.names)]


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base, *names = _resolve(module, path, node)
                # `from pkg import sub` depends on the submodule; `from pkg import name` on pkg itself
                subs = [n for n in names if n in modules]
                targets = subs + ([base] if len(subs) < len(names) else [])
            else:
                continue
            for t in targets:
                if t in modules and t != module:
                    graph[module].add(t)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules, or None (iterative DFS with colours)."""
    colour = dict.fromkeys(graph, 0)
    for start, children0 in graph.items():
        if colour[start]:
            continue
        stack = [(start, iter(sorted(children0)))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child):] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)


@pytest.mark.parametrize("lower, upper", [("logitrank.synth", "logitrank.algorithms"),
                                          ("logitrank.synth", "logitrank.verify"),
                                          ("logitrank.algorithms", "logitrank.verify")])
def test_layers_point_one_way(lower, upper):
    graph = import_graph()
    bad = sorted((m, t) for m, ts in graph.items() for t in ts if _package(m) == lower and _package(t) == upper)
    assert not bad, f"{lower} must not import {upper}: {bad}"


def test_the_cycle_finder_can_fail():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
