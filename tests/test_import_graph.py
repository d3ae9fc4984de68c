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


# -- the rooms of verify/ (issue 30) ------------------------------------------------------------------
#: each room's floor: a module may import its own room and rooms on lower floors only
ROOMS = {"figures": 1, "models": 1, "experiments": 2, "claims": 3, "cli": 4}
#: shared plumbing at verify/'s root, importable from every room (floor 0)
ROOT_MODULES = {"_metrics", "_store", "_presets", "_paper"}
#: old import paths kept for one release: they only re-export, and nothing inside imports them
DEPRECATED = {"api", "sweep", "checks", "corpus_cut"}


def _room(module: str) -> str | None:
    """'models', …, 'root' for shared plumbing, 'front' for verify/__init__, 'deprecated', or None outside verify."""
    parts = module.split(".")
    if parts[:2] != ["logitrank", "verify"]:
        return None
    if len(parts) == 2:
        return "front"
    head = parts[2]
    if head in ROOMS:
        return head
    if head in ROOT_MODULES:
        return "root"
    if head in DEPRECATED:
        return "deprecated"
    return f"unplaced:{head}"


def room_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs that break the rooms' layering."""
    bad = []
    for module, targets in graph.items():
        src = _room(module)
        if src is None or src in ("front", "deprecated"):
            continue
        for t in targets:
            dst = _room(t)
            if dst is None or dst == src or dst == "root":
                continue
            misplaced = dst in ("front", "deprecated") or src == "root" or "unplaced" in dst + src
            if misplaced or ROOMS[dst] >= ROOMS[src]:
                bad.append((module, t))
    return sorted(bad)


def test_every_verify_module_lives_in_a_room():
    unplaced = sorted(m for m in import_graph() if (_room(m) or "").startswith("unplaced"))
    assert not unplaced, f"modules at verify/'s root outside the shared plumbing: {unplaced}"
    root_files = sorted(p.name for p in (ROOT / "verify").glob("*.py"))
    assert len(root_files) <= 8, f"verify/'s root keeps at most eight modules; it has {root_files}"


def test_rooms_import_downwards_only():
    bad = room_violations(import_graph())
    assert not bad, "imports against the rooms' layering (figures, models → experiments → claims → cli): " + \
        ", ".join(f"{a} → {b}" for a, b in bad)


def test_the_room_check_can_fail():
    graph = {"logitrank.verify.models._x": {"logitrank.verify.claims._y", "logitrank.verify._metrics"},
             "logitrank.verify.claims._y": {"logitrank.verify.cli.check", "logitrank.verify.experiments._z"},
             "logitrank.verify._metrics": {"logitrank.verify.figures._s"},
             "logitrank.verify.figures._s": {"logitrank.verify.models._x"},
             "logitrank.verify.cli.check": {"logitrank.verify.api"}}
    assert room_violations(graph) == [("logitrank.verify._metrics", "logitrank.verify.figures._s"),
                                      ("logitrank.verify.claims._y", "logitrank.verify.cli.check"),
                                      ("logitrank.verify.cli.check", "logitrank.verify.api"),
                                      ("logitrank.verify.figures._s", "logitrank.verify.models._x"),
                                      ("logitrank.verify.models._x", "logitrank.verify.claims._y")]
