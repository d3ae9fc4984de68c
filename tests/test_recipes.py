"""Issue 30, item 5: the reference recipes cannot fail silently.

Every script under ``results-reference/`` and ``reference/``:

* shell (``*.sh``): a bash shebang, ``set -euo pipefail`` before its first command, nothing that swallows a
  failure (``|| true``, ``|| :``, ``|| exit 0``, ``|| echo``, ``set +e``, a job sent to the background), and
  ``bash -n`` accepts it;
* Python (``*.py``): public names of logitrank only — no module path under ``logitrank`` with a component
  starting with ``_``, no private name imported from logitrank, no private attribute of anything (a recipe's
  objects come from logitrank: reaching into any of them is the same coupling), no ``"logitrank…._x"``
  string (``import_module``, ``--plugin``) — and every name imported from a logitrank module is in that
  module's ``__all__``; its work sits in ``main()`` behind ``if __name__ == "__main__":``, so importing it
  (done here) is cheap and writes nothing.

Then each recipe's command line meets the code it drives, at no cost: ``run.sh --show-config`` resolves the
SmolLM2 check and spectrum settings with the recipe's exact ``--set`` flags (an unknown key exits 2, and
``set -e`` makes the script fail), ``run_dask_spectrum.py``'s spectrum command is resolved with
``--show-config``, ``hidden-width/run.py`` runs at toy size on the tiny model, and ``alpha_vs_n.py`` reruns
into a scratch folder and must reproduce the committed table. The checkers are shown to flag the defect
this file was written for (``|| true``; a patch of ``logitrank.verify.claims.checks._real_setup``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE_ROOTS = (ROOT / "results-reference", ROOT / "reference")
SMOLLM2 = ROOT / "results-reference" / "smollm2"
REAL_MODELS_DOC = ROOT / "docs" / "real-models.md"
CLAIMS = ("E1", "E3", "E6", "E7", "E2")
#: the sizes of the committed SmolLM2 run (results-reference/smollm2/README.md: |H| = |F| = 32, 50–200, k = 50)
REFERENCE_SIZES = {"n": "32", "n_checkpoint": "32", "min_chars": "50", "max_chars": "200", "k": "50"}


def _recipes(suffix: str) -> list[Path]:
    return sorted(p for root in RECIPE_ROOTS if root.is_dir() for p in root.rglob(f"*{suffix}") if p.is_file())


SHELL = _recipes(".sh")
PYTHON = _recipes(".py")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- the checkers (pure functions of a script's text) ---------------------------------------------------

#: a failure turned into success: `|| true`, `|| :`, `|| exit 0`, `|| return 0`, `|| echo …`, `|| printf …`
_SWALLOWED = re.compile(r"\|\|\s*(?:true|:|exit\s+0|return\s+0)(?=\s|;|\)|$)|\|\|\s*(?:echo|printf)\b")
#: strict mode switched off again
_UNSTRICT = re.compile(r"(?:^|[;&|]\s*|\s)set\s+(?:\+[A-Za-z]*[eu]|\+o\s+pipefail)")
#: a command sent to the background: its exit status is lost unless waited for by PID
_BACKGROUND = re.compile(r"(?<![&>|<])&(?![&>])\s*$")


def _strict_mode(line: str) -> bool:
    """Whether ``line`` is a ``set`` command turning on errexit, nounset and pipefail."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return False
    if not words or words[0] != "set":
        return False
    flags, options = set(), set()
    rest = iter(words[1:])
    for word in rest:
        if word.startswith("-") and not word.startswith("--"):
            flags.update(word[1:])
            if word.endswith("o"):
                options.add(next(rest, ""))
    return {"e", "u"} <= flags and "pipefail" in options


def shell_problems(text: str) -> list[str]:
    """What keeps the shell script ``text`` from stopping at its first failure (empty when nothing)."""
    lines = text.splitlines()
    problems = []
    if not lines or not re.match(r"#!\s*(?:/usr/bin/env\s+bash|/bin/bash|/usr/bin/bash)\b", lines[0]):
        problems.append("line 1: no bash shebang (`#!/usr/bin/env bash`; pipefail is a bash option)")
    code = [(number, line) for number, line in enumerate(lines, 1)
            if number > 1 and line.strip() and not line.lstrip().startswith("#")]
    if not code or not _strict_mode(code[0][1]):
        where = f"line {code[0][0]}" if code else "the script"
        problems.append(f"{where}: the first command is not `set -euo pipefail`")
    for number, line in code:
        for pattern, why in ((_SWALLOWED, "swallows a failure"), (_UNSTRICT, "switches strict mode off"),
                             (_BACKGROUND, "runs a command in the background (its failure is lost)")):
            if pattern.search(line):
                problems.append(f"line {number}: {why}: {line.strip()}")
    return problems


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _logitrank(module: str | None) -> bool:
    return bool(module) and (module == "logitrank" or module.startswith("logitrank."))


def _private_path(module: str) -> bool:
    return any(_private(part) for part in module.split("."))


_PRIVATE_STRING = re.compile(r"\blogitrank(?:\.\w+)*\.(?:_\w+)")


def _import_problems(node: ast.AST) -> list[str]:
    out = []
    if isinstance(node, ast.Import):
        out += [f"line {node.lineno}: imports the private module {a.name}" for a in node.names
                if _logitrank(a.name) and _private_path(a.name)]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            out.append(f"line {node.lineno}: relative import (a recipe is a script, not a package module)")
        elif _logitrank(node.module):
            if _private_path(node.module):
                out.append(f"line {node.lineno}: imports from the private module {node.module}")
            out += [f"line {node.lineno}: imports the private name {a.name} from {node.module}"
                    for a in node.names if _private(a.name)]
    return out


def _access_problems(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Attribute) and _private(node.attr):
        return [f"line {node.lineno}: private attribute .{node.attr}"]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "delattr", "hasattr"} and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)):
        return [f"line {node.lineno}: {node.func.id}(…, {node.args[1].value!r}): a private attribute"]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _PRIVATE_STRING.search(node.value):
        return [f"line {node.lineno}: names a private logitrank module: {_PRIVATE_STRING.search(node.value)[0]}"]
    return []


def _is_main_guard(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


_DECLARATIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _declares_names(node: ast.stmt) -> bool:
    """An assignment to plain names (a constant, a path); one to an item or an attribute patches something."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
    return bool(flat) and all(isinstance(e, ast.Name) for e in flat)


def _top_level_problems(tree: ast.Module) -> list[str]:
    """Statements at module level that do work (only declarations, a docstring and the main guard may)."""
    out = []
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if not (docstring or isinstance(node, _DECLARATIONS) or _declares_names(node) or _is_main_guard(node)):
            out.append(f"line {node.lineno}: work at import time ({type(node).__name__}); "
                       "put it in main() behind `if __name__ == \"__main__\":`")
    if not any(_is_main_guard(node) for node in tree.body):
        out.append("no `if __name__ == \"__main__\":` guard")
    return out


def python_problems(text: str, filename: str = "<recipe>") -> list[str]:
    """Private logitrank names used by the Python recipe ``text``, and work done at import (empty when none)."""
    tree = ast.parse(text, filename)
    problems = _top_level_problems(tree)
    for node in ast.walk(tree):
        problems += _import_problems(node) + _access_problems(node)
    return problems


def unexported_names(text: str) -> list[str]:
    """Names imported from a logitrank module that are not in its ``__all__`` (nor a public submodule)."""
    out = []
    for node in ast.walk(ast.parse(text)):
        if not (isinstance(node, ast.ImportFrom) and not node.level and _logitrank(node.module)):
            continue
        module = importlib.import_module(node.module)
        exported = set(getattr(module, "__all__", ()))
        for alias in node.names:
            if alias.name not in exported and importlib.util.find_spec(f"{node.module}.{alias.name}") is None:
                out.append(f"line {node.lineno}: {alias.name} is not in {node.module}.__all__")
    return out


# --- the checkers can fail ----------------------------------------------------------------------------


def test_the_shell_checker_flags_swallowed_failures():
    good = "#!/usr/bin/env bash\n# what it does\nset -euo pipefail\ncd /tmp\nfalse && echo no || exit 1\n"
    assert shell_problems(good) == []
    assert shell_problems(good.replace("set -euo pipefail", "set -Eeuo pipefail")) == []
    assert shell_problems(good.replace("set -euo pipefail", "set -e -u -o pipefail")) == []
    # the defect of issue 30, item 5 (results-reference/smollm2/run.sh:11)
    swallowed = good + ".venv/bin/logitrank check E1 --plugin sizes.py \\\n    --json out.json || true\n"
    assert any("swallows a failure" in p for p in shell_problems(swallowed))
    for bad in ("x || :\n", "x || exit 0\n", "x || echo failed\n", "set +e\n", "set +o pipefail\n", "x &\n"):
        assert shell_problems(good + bad), bad
    assert shell_problems(good.replace("set -euo pipefail", "set -eu")), "pipefail missing"
    assert shell_problems(good.replace("set -euo pipefail", "set -eo pipefail")), "nounset missing"
    late = "#!/usr/bin/env bash\ncd /tmp\nset -euo pipefail\n"
    assert any("first command" in p for p in shell_problems(late))
    assert any("shebang" in p for p in shell_problems("#!/bin/sh\nset -euo pipefail\n"))
    assert shell_problems(good + "x 2>&1\ny && z\n") == []


def test_the_python_checker_flags_private_names():
    good = ('"""doc"""\nfrom logitrank.verify import trend_point\n\n\ndef main():\n    return trend_point\n\n\n'
            'if __name__ == "__main__":\n    main()\n')
    assert python_problems(good) == []
    # the defect of issue 30, item 5 (results-reference/smollm2/sizes.py)
    patch = ('"""doc"""\nimport dataclasses\n\nfrom logitrank.verify.claims.checks import _real_setup\n\n'
             '_full = _real_setup._SIZES[("hf", "full")]\n'
             '_real_setup._SIZES[("hf", "full")] = dataclasses.replace(_full, n=32)\n')
    found = python_problems(patch)
    assert any("private name _real_setup" in p for p in found)
    assert any("private attribute ._SIZES" in p for p in found)
    assert any("line 7: work at import time" in p for p in found), found  # the subscript assignment
    assert any("guard" in p for p in found) and not any(p.startswith(("line 2: work", "line 6: work")) for p in found)
    dotted = "import logitrank.verify.claims.checks._real_setup\n"
    assert any("private module logitrank.verify.claims.checks._real_setup" in p for p in python_problems(dotted))
    assert any("private module" in p for p in python_problems("from logitrank.verify.models._names import x\n"))
    text = 'import importlib\nm = importlib.import_module("logitrank.verify.claims.checks._real_setup")\n'
    assert any("names a private logitrank module" in p for p in python_problems(text))
    assert any("private attribute" in p for p in python_problems('x = getattr(obj, "_cache")\n'))
    assert unexported_names("from logitrank.verify import trend_point, LEDGER\n") == []
    assert unexported_names("from logitrank.verify import annotations\n")  # a module global, not exported


# --- the recipes ----------------------------------------------------------------------------------------


def test_there_are_recipes_to_check():
    assert SMOLLM2 / "run.sh" in SHELL
    assert {SMOLLM2 / "alpha_vs_n.py", SMOLLM2 / "run_dask_spectrum.py", SMOLLM2 / "hidden-width" / "run.py"} <= set(PYTHON)


@pytest.mark.parametrize("path", SHELL, ids=_rel)
def test_shell_recipe_stops_at_the_first_failure(path):
    assert shell_problems(path.read_text(encoding="utf-8")) == [], _rel(path)
    syntax = subprocess.run(["bash", "-n", str(path)], check=False, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def _snapshot() -> dict:
    """(mtime, size) of every file a recipe may write: results-reference/, reference/, docs/real-models.md."""
    files = [p for root in RECIPE_ROOTS if root.is_dir() for p in root.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in [*files, REAL_MODELS_DOC] if p.exists()}


def _import(path: Path, monkeypatch):
    """Import the recipe at ``path`` as a module of its own (dataclasses need it in sys.modules meanwhile)."""
    name = "recipe_" + re.sub(r"\W", "_", _rel(path))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "argv", [str(path)])
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ beside the committed results
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", PYTHON, ids=_rel)
def test_python_recipe_uses_public_names_and_imports_cheaply(path, monkeypatch):
    text = path.read_text(encoding="utf-8")
    assert python_problems(text, str(path)) == [], _rel(path)
    assert unexported_names(text) == [], _rel(path)
    before = _snapshot()
    module = _import(path, monkeypatch)
    assert callable(getattr(module, "main", None)), f"{_rel(path)} has no main()"
    assert _snapshot() == before, f"importing {_rel(path)} wrote files"


# --- each recipe's command line, at no cost -------------------------------------------------------------


def _check_blocks(text: str) -> dict[str, dict[str, str]]:
    """``logitrank check --show-config``'s output as {claim: {key: value}}."""
    blocks, current = {}, None
    for line in text.splitlines():
        head = re.match(r"(\w+) \((.*)\):$", line)
        if head:
            current = blocks.setdefault(head[1], {"(preset)": head[2]})
        elif current is not None and re.match(r"  \w+ = ", line):
            key, value = line.strip().split(" = ", 1)
            current[key] = value
    return blocks


def _run_sh(script: Path) -> subprocess.CompletedProcess:
    """``script --show-config`` at the recipe's default N (an LOGITRANK_REF_N of the caller's is dropped)."""
    environ = {k: v for k, v in os.environ.items() if k != "LOGITRANK_REF_N"}
    return subprocess.run(["bash", str(script), "--show-config"], check=False, capture_output=True, text=True,
                          env=environ, timeout=120)


needs_cli = pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "logitrank").exists(),
                               reason="run.sh calls .venv/bin/logitrank (make test creates it)")


@needs_cli
def test_smollm2_run_sh_settings_resolve_to_the_reference_sizes():
    before = _snapshot()
    done = _run_sh(SMOLLM2 / "run.sh")
    assert done.returncode == 0, done.stderr
    assert _snapshot() == before, "run.sh --show-config wrote files"
    checks, _, spectrum = done.stdout.partition("\n{\n")
    blocks = _check_blocks(checks)
    assert list(blocks) == list(CLAIMS)
    for claim, settings in blocks.items():
        assert settings["(preset)"] == "full-hf, with --set", claim  # SmolLM2's own preset, overridden
        assert {k: settings.get(k) for k in REFERENCE_SIZES} == REFERENCE_SIZES, claim
    config = json.loads("{\n" + spectrum)
    assert (config["model"], config["corpus"], config["n"], config["k"], config["lengths"], config["seed"]) == \
        ("smollm2", "shakespeare", 32, 50, [50, 200], 0)
    assert Path(config["out"]) == Path("results-reference/smollm2/spectrum")


@needs_cli
def test_a_bad_setting_in_run_sh_fails_the_script(tmp_path):
    # the recipe copied at its depth under a scratch root that links .venv: a renamed key must stop it (exit 2)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    copy = tmp_path / "results-reference" / "smollm2" / "run.sh"
    copy.parent.mkdir(parents=True)
    text = (SMOLLM2 / "run.sh").read_text(encoding="utf-8")
    assert "--set min_chars=50" in text
    copy.write_text(text.replace("--set min_chars=50", "--set min_characters=50"), encoding="utf-8")
    done = _run_sh(copy)
    assert done.returncode == 2 and "unknown setting 'min_characters'" in done.stderr
    assert "E1 (" not in done.stdout  # stopped before printing anything


@pytest.mark.parametrize(("argv", "out", "n", "dtype"), [
    ([], "spectrum-n256", 256, "float32"),
    (["--n", "512", "--dtype", "bfloat16", "--seed", "1"], "seed1/spectrum-n512-bf16", 512, "bfloat16"),
])
def test_run_dask_spectrum_command_resolves(argv, out, n, dtype, monkeypatch, capsys):
    from logitrank.verify.cli import main as logitrank

    module = _import(SMOLLM2 / "run_dask_spectrum.py", monkeypatch)
    command = module.spectrum_argv(module.parse_args(argv))
    assert logitrank([*command, "--scheduler", "tcp://127.0.0.1:9", "--show-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["model"], config["n"], config["dtype"], config["backend"]) == ("smollm2", n, dtype, "dask")
    assert Path(config["out"]) == SMOLLM2 / out


def test_hidden_width_recipe_at_toy_size(tmp_path, monkeypatch, capsys):
    pytest.importorskip("openai")
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    import torch

    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    module = _import(SMOLLM2 / "hidden-width" / "run.py", monkeypatch)
    threads = torch.get_num_threads()
    out = tmp_path / "summary.json"
    try:
        module.main(["--model", "tiny", "--prompts", "8", "--columns", "24", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    summary = json.loads(out.read_text())
    assert summary["model"] == "tiny" and summary["columns"] == 24 and summary["width (hidden size)"] == 96
    assert summary["rank (API)"] == summary["rank (local)"] <= min(summary["prompts"], 24)
    assert summary["calls"] == summary["prompts"] * 2  # ⌈23 / 19⌉ calls per prompt at k = 20
    assert summary["max |sigma_API - sigma_local|"] < 1e-3
    assert json.loads(capsys.readouterr().out) == summary
    fast = tmp_path / "fast.json"
    try:  # issue 33: 128 chosen log-probabilities per request, 8 prompts in one request
        module.main(["--model", "tiny", "--prompts", "8", "--columns", "24", "--out", str(fast), "--method", "token_ids",
                     "--batch-prompts", "8"])
    finally:
        torch.set_num_threads(threads)
    quick = json.loads(fast.read_text())
    # ⌈256 / 128⌉ = 2 requests of 8 prompts each, plus the client's spot checks (drawn per answer, seeded)
    assert quick["rank (API)"] == summary["rank (API)"] and 2 <= quick["calls"] <= 4 < summary["calls"]
    capsys.readouterr()


def test_alpha_vs_n_recipe_reproduces_the_committed_table(tmp_path, monkeypatch, capsys):
    module = _import(SMOLLM2 / "alpha_vs_n.py", monkeypatch)
    assert module.README == REAL_MODELS_DOC  # the block lives in docs/real-models.md now
    doc = tmp_path / "real-models.md"
    shutil.copyfile(REAL_MODELS_DOC, doc)
    assert module.main(out=tmp_path / "alpha-vs-n", readme=doc) == 0
    committed = SMOLLM2 / "alpha-vs-n"
    assert (tmp_path / "alpha-vs-n" / "table.md").read_text() == (committed / "table.md").read_text()
    assert doc.read_text(encoding="utf-8") == REAL_MODELS_DOC.read_text(encoding="utf-8")
    rerun = json.loads((tmp_path / "alpha-vs-n" / "summary.json").read_text())
    stored = json.loads((committed / "summary.json").read_text())
    assert (rerun["verdict"], rerun["reason"]) == (stored["verdict"], stored["reason"])
    capsys.readouterr()


GEMMA3 = ROOT / "results-reference" / "gemma3"


def test_gemma3_trend_recipe_runs_whole_at_toy_size(tmp_path):
    """run_trend.sh (and the run_alpha_vs_n.sh it drives) end to end on the tiny model: float32 at both cuts,
    the bfloat16 check, the dtype chosen from e_dtype, the late N at both cuts; a rerun recomputes nothing."""
    env = {**os.environ, "LOGITRANK_REF_MODEL": "tiny", "LOGITRANK_REF_OUT": str(tmp_path), "LOGITRANK_REF_LENGTHS": "8:24",
           "LOGITRANK_TREND_FLOAT32_NS": "16", "LOGITRANK_TREND_CHECK_NS": "16", "LOGITRANK_TREND_LATE_NS": "24"}
    script = GEMMA3 / "run_trend.sh"
    done = subprocess.run(["bash", str(script)], env=env, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "curve complete" in done.stdout
    late = re.search(r"N = 24 run in (\w+)", done.stdout)
    assert late is not None and late.group(1) in ("bfloat16", "float32")
    suffix = "-bf16" if late.group(1) == "bfloat16" else ""
    for rel in ("spectrum-n16", "seed1/spectrum-n16", "spectrum-n16-bf16", f"spectrum-n24{suffix}",
                f"seed1/spectrum-n24{suffix}"):
        summary = json.loads((tmp_path / rel / "summary.json").read_text())
        assert summary["|H|"] == int(rel.split("-n")[1].split("-")[0])
    again = subprocess.run(["bash", str(script)], env=env, check=False, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("done already") == 5


def test_gemma3_trend_recipe_fails_loudly_on_a_bad_dtype(tmp_path):
    env = {**os.environ, "LOGITRANK_REF_DTYPE": "float8", "LOGITRANK_REF_OUT": str(tmp_path)}
    done = subprocess.run(["bash", str(GEMMA3 / "run_alpha_vs_n.sh")], env=env, check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "LOGITRANK_REF_DTYPE must be float32 or bfloat16" in done.stderr


def test_gemma3_alpha_table_reproduces_the_committed_table(tmp_path, monkeypatch, capsys):
    module = _import(GEMMA3 / "alpha_table.py", monkeypatch)
    monkeypatch.setattr(module, "OUT", tmp_path / "alpha-vs-n")
    doc = tmp_path / "real-models.md"
    shutil.copyfile(REAL_MODELS_DOC, doc)
    monkeypatch.setattr(module, "DOC", doc)
    readme = tmp_path / "README.md"
    shutil.copyfile(ROOT / "README.md", readme)
    monkeypatch.setattr(module, "README", readme)
    module.main()
    assert readme.read_text(encoding="utf-8") == (ROOT / "README.md").read_text(encoding="utf-8")  # real-models block
    committed = GEMMA3 / "alpha-vs-n"
    assert (tmp_path / "alpha-vs-n" / "table.md").read_text() == (committed / "table.md").read_text()
    assert doc.read_text(encoding="utf-8") == REAL_MODELS_DOC.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "alpha-vs-n" / "summary.json").read_text()) == json.loads(
        (committed / "summary.json").read_text())
    capsys.readouterr()


LEDGER = ROOT / "results-reference" / "run_ledger.sh"


def test_ledger_recipe_runs_at_toy_size_over_two_cuts_and_resumes(tmp_path):
    """run_ledger.sh on the tiny model (two cheap claims and E12): bfloat16, cuts 0 and 1, and a second
    invocation reuses every finished claim instead of recomputing it."""
    import sqlite3

    env = {**os.environ, "LOGITRANK_LEDGER_OUT": str(tmp_path), "LOGITRANK_LEDGER_CLAIMS": "E6 E9"}
    for _ in range(2):
        done = subprocess.run(["bash", str(LEDGER), "tiny"], env=env, check=False, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"ledger complete: {tmp_path}" in done.stdout
    rows = json.loads((tmp_path / "checks.json").read_text())
    assert [r["id"] for r in rows] == ["E6", "E9"]
    assert all(r["setting"]["dtype"] == "bfloat16" and r["setting"]["seeds"] == [0, 1] for r in rows)
    assert [r["id"] for r in json.loads((tmp_path / "e12" / "checks.json").read_text())] == ["E12"]
    with sqlite3.connect(tmp_path / "logitrank.sqlite") as db:
        reused = db.execute("SELECT claim_id FROM claim_results WHERE reused_from IS NOT NULL").fetchall()
    assert sorted(r[0] for r in reused) == ["E6", "E9"]  # the second invocation computed nothing again


@pytest.mark.parametrize("model", ["smollm2", "gemma3"])
def test_ledger_recipe_settings_resolve_to_the_rule(model):
    done = subprocess.run(["bash", str(LEDGER), model, "--show-config"], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for claim in ("E6", "E9", "E1", "E3", "E7", "E5", "E2", "X5", "E8", "E11", "E10", "E12"):
        assert f"{claim} (full" in done.stdout
    assert done.stdout.count("n = 256") == 12 and "lingen_histories = 80" in done.stdout


def test_ledger_recipe_refuses_an_unknown_model():
    done = subprocess.run(["bash", str(LEDGER), "llama"], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage:" in done.stderr
