"""The distribution installs as one ``logitrank`` package (issue: namespace), and imports stay one-way.

* the wheel holds no top-level ``logitrank.synth``, ``logitrank.algorithms`` or ``logitrank.verify``;
* it installs into a fresh environment beside PyPI's own ``logitrank.algorithms`` package, both importable;
* no module of the project is loaded under two names;
* no subpackage imports another subpackage's private (underscore) module, and imports flow
  synth → algorithms → verify only.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import logitrank

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("synth", "algorithms", "verify")
#: the order of the one-way import flow: a package may import only those before it
FLOW = {"synth": (), "algorithms": ("synth",), "verify": ("synth", "algorithms")}


def _python_files(sub: str) -> list[Path]:
    return sorted((ROOT / sub).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    """Absolute module names imported by a source file (relative imports resolved, doctests included)."""
    tree = ast.parse(path.read_text())
    sub = path.relative_to(ROOT).parts
    package = ["logitrank", *sub[:-1]] if sub[0] in SUBPACKAGES else list(sub[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.append(mod)
            names += [f"{mod}.{a.name}" for a in node.names]
    for line in path.read_text().splitlines():  # docstring examples import too
        line = line.strip()
        if line.startswith((">>> from ", ">>> import ")):
            words = line[4:].split()
            names.append(words[1])
    return names


def test_project_imports_only_through_logitrank_names():
    offenders = []
    for sub in (*SUBPACKAGES, "tests", "benchmarks"):
        for path in sorted((ROOT / sub).rglob("*.py")):
            for name in _imports(path):
                if name.split(".")[0] in SUBPACKAGES:
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, "imports outside the logitrank namespace:\n" + "\n".join(offenders)


def test_no_package_reaches_into_another_private_module_and_flow_is_one_way():
    offenders = []
    for sub in SUBPACKAGES:
        for path in _python_files(sub):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] != "logitrank" or len(parts) < 2 or parts[1] == sub:
                    continue
                other = parts[1]
                if other in SUBPACKAGES and other not in FLOW[sub]:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name} (flow is synth → algorithms → verify)")
                if other in SUBPACKAGES and any(p.startswith("_") for p in parts[2:]):
                    offenders.append(f"{path.relative_to(ROOT)} imports private {name}")
    assert not offenders, "\n".join(offenders)


def _walk_all() -> list[str]:
    names = []
    for sub in SUBPACKAGES:
        pkg = importlib.import_module(f"logitrank.{sub}")
        names += [pkg.__name__] + [i.name for i in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}.")]
    return [n for n in names if not n.endswith(".__main__")]  # `python -m` entry points run on import


def test_no_module_is_loaded_under_two_names():
    for name in _walk_all():
        importlib.import_module(name)
    by_file: dict[str, list[str]] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        source = Path(file).resolve() if file else None
        if source and any(source.is_relative_to(ROOT / d) for d in ("logitrank", *SUBPACKAGES)):
            by_file.setdefault(str(source), []).append(name)
    doubles = {f: n for f, n in by_file.items() if len(n) > 1}
    assert not doubles, f"modules loaded under two names: {doubles}"
    bare = [n for n in sys.modules if n.split(".")[0] in SUBPACKAGES]
    assert not bare, f"project folders imported as top-level packages: {bare}"


def test_top_package_exposes_version_and_subpackages():
    assert isinstance(logitrank.__version__, str) and logitrank.__version__[0].isdigit()
    for sub in SUBPACKAGES:
        assert getattr(logitrank, sub).__name__ == f"logitrank.{sub}"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        logitrank.nope  # noqa: B018


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--disable-pip-version-check", "-w", str(dist), str(ROOT)])
    (whl,) = dist.glob("logitrank-*.whl")
    return whl


def test_wheel_holds_only_the_logitrank_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"logitrank"}, f"top-level entries of the wheel: {sorted(tops)}"
    for must in ("logitrank/__init__.py", "logitrank/synth/_isan.py", "logitrank/algorithms/_lp_sampler.py",
                 "logitrank/verify/cli/__init__.py", "logitrank/verify/claims/checks/__init__.py",
                 "logitrank/verify/data/tiny/a/manifest.json"):
        assert must in names, f"{must} missing from the wheel"
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert entry and "logitrank.verify.cli:main" in zipfile.ZipFile(wheel).read(entry[0]).decode()


def test_wheel_installs_beside_pypi_algorithms(wheel, tmp_path):
    """A fresh venv gets PyPI's ``logitrank.algorithms`` and our wheel; both import, from their own files.

    The venv borrows this environment's third-party packages (torch, numpy, …) through a path
    file instead of installing them again; the project itself comes only from the wheel.
    """
    env = tmp_path / "fresh"
    venv.create(env, with_pip=True)
    py = env / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "algorithms"])
    _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", str(wheel)])
    fresh_site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (fresh_site / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = (
        "import algorithms, algorithms.sorting, logitrank, logitrank.algorithms as la, logitrank.verify;"
        "from logitrank.synth import random_isan;"
        "from logitrank.algorithms import level_ranks;"
        "assert not hasattr(algorithms, 'learn_isan') and hasattr(algorithms.sorting, 'merge_sort'), algorithms.__file__;"
        f"assert algorithms.__file__.startswith({str(fresh_site)!r}), algorithms.__file__;"
        f"assert la.__file__.startswith({str(fresh_site)!r}), la.__file__;"
        "print(level_ranks(random_isan(2, 4, 2, generator=0)))"
    )
    out = _run([str(py), "-c", probe], cwd=tmp_path)
    assert out.stdout.strip() == "[1, 2, 2, 1]"
