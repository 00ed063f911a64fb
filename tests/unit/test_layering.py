"""The layers import only downwards: an AST walk of every import, lazy ones included.

    grmux_cli        the command line, on top of everything
    deployments      scheduling (prefect.yaml, setup, the demo)
    flows            composition
    tasks            thin Prefect wrappers
    grmux_core       plain Python: no Prefect
    grmux_sandbox    beside the layers (emulated RWS + RCS), for tests, demo and benchmarks

``benchmarks/``, ``tests/`` and ``scripts/`` may import anything. An import inside a function, under
``if TYPE_CHECKING:`` or through ``importlib.import_module("...")`` counts like any other: a lazy
import is still a dependency, only a later one.

The outer boundary too: no tracked file points into the spec folder beside the checkout.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Rule:
    """What the modules of ``package`` must not import (top-level names; ``x*`` = every name starting with x)."""

    package: str
    forbidden: tuple[str, ...]

    def forbids(self, module: str) -> bool:
        top = module.split(".")[0]
        return any(top.startswith(f[:-1]) if f.endswith("*") else top == f for f in self.forbidden)


RULES = (
    Rule("grmux_core", ("prefect*", "tasks", "flows", "deployments", "grmux_cli", "grmux_sandbox",
                        "great_expectations")),
    Rule("tasks", ("flows", "deployments", "grmux_cli", "grmux_sandbox")),
    Rule("flows", ("deployments", "grmux_cli", "grmux_sandbox")),
    Rule("deployments", ("grmux_cli", "grmux_sandbox")),
    Rule("grmux_sandbox", ("tasks", "flows", "deployments", "grmux_cli")),
)


@dataclass(frozen=True)
class Import:
    module: str
    line: int
    in_function: bool


def allowed_exception(path: str, found: Import) -> bool:
    """The two exceptions to :data:`RULES`: great-expectations, lazily, in the quality checks, and the
    demo, which starts the sandbox it shows."""
    top = found.module.split(".")[0]
    if path == "grmux_core/quality.py" and top == "great_expectations":
        return found.in_function
    return path == "deployments/demo.py" and top == "grmux_sandbox"


class _Imports(ast.NodeVisitor):
    """Every module one file imports: ``import``, ``from ... import`` (relative ones resolved) and
    ``importlib.import_module`` / ``__import__`` with a literal name, wherever they stand."""

    def __init__(self, package: str):
        self.package = package  # the dotted package the file belongs to, for relative imports
        self.found: list[Import] = []
        self._depth = 0

    def _add(self, module: str, node: ast.AST) -> None:
        self.found.append(Import(module, node.lineno, self._depth > 0))

    def _function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            self._add(f"{base}.{node.module}" if node.module else base, node)
        else:
            self._add(node.module or "", node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                target = first.value
                if target.startswith("."):
                    dots = len(target) - len(target.lstrip("."))
                    parts = self.package.split(".")
                    target = ".".join([*parts[: len(parts) - dots + 1], target.lstrip(".")])
                self._add(target, node)
        self.generic_visit(node)


def imports_of(path: Path, root: Path) -> list[Import]:
    relative = path.relative_to(root).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    package = ".".join(parts if path.name == "__init__.py" else parts[:-1])
    visitor = _Imports(package)
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return visitor.found


def python_files(root: Path, package: str) -> Iterator[Path]:
    yield from sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)


def violations(root: Path) -> list[str]:
    """``file:line: imports X (rule)`` for every import that breaks :data:`RULES` under ``root``."""
    found = []
    for rule in RULES:
        for path in python_files(root, rule.package):
            where = path.relative_to(root).as_posix()
            for imported in imports_of(path, root):
                if rule.forbids(imported.module) and not allowed_exception(where, imported):
                    lazily = " (inside a function)" if imported.in_function else ""
                    found.append(f"{where}:{imported.line}: imports {imported.module}{lazily}; "
                                 f"{rule.package} must not import {', '.join(rule.forbidden)}")
    return found


def test_the_real_tree_imports_only_downwards():
    walked = [p for rule in RULES for p in python_files(ROOT, rule.package)]
    assert len(walked) > 30  # the walk really found the packages
    found = violations(ROOT)
    for line in found:
        print(line)
    assert not found, "layer violations:\n" + "\n".join(found)


def fake_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(root).parents[:-1]:
            (root / parent / "__init__.py").touch()
    return root


def test_a_lazy_prefect_import_in_the_core_is_reported_with_file_and_line(tmp_path):
    root = fake_tree(tmp_path, {"grmux_core/fake.py": "import os\n\n\ndef later():\n    import prefect\n"})
    assert violations(root) == [
        ("grmux_core/fake.py:5: imports prefect (inside a function); grmux_core must not import "
         "prefect*, tasks, flows, deployments, grmux_cli, grmux_sandbox, great_expectations")]


def test_every_kind_of_import_is_seen_and_the_exceptions_are_narrow(tmp_path):
    root = fake_tree(tmp_path, {
        "grmux_core/a.py": "from prefect_redis.locking import RedisLockManager\n",
        "grmux_core/sub/b.py": ("import importlib\n\n\nclass C:\n    def m(self):\n"
                                "        return importlib.import_module('flows.grmux')\n"),
        "grmux_core/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tasks.context import RunConfig\n",
        "grmux_core/d.py": "from . import a\nfrom .sub import b\nx = __import__('grmux_cli.main')\n",
        "grmux_core/quality.py": "import great_expectations\n\n\ndef check():\n    import great_expectations.core\n",
        "tasks/t.py": "async def f():\n    from flows import grmux\n",
        "flows/f.py": "import tasks.report\nimport grmux_sandbox.site\n",
        "deployments/demo.py": "from grmux_sandbox.site import Sandbox\n",
        "deployments/setup.py": "from grmux_sandbox.site import Sandbox\nimport grmux_cli\n",
        "grmux_sandbox/s.py": "import grmux_core.config\nfrom deployments import setup\n",
        "grmux_cli/main.py": "import flows.grmux, grmux_sandbox.cli, deployments.setup\n",
        "benchmarks/x.py": "import grmux_cli, flows, prefect\n",
    })
    found = {line.split(": imports ")[0]: line.split(": imports ")[1].split(";")[0] for line in violations(root)}
    assert found == {
        "grmux_core/a.py:1": "prefect_redis.locking",
        "grmux_core/sub/b.py:6": "flows.grmux (inside a function)",
        "grmux_core/c.py:3": "tasks.context",
        "grmux_core/d.py:3": "grmux_cli.main",
        "grmux_core/quality.py:1": "great_expectations",
        "tasks/t.py:2": "flows (inside a function)",
        "flows/f.py:2": "grmux_sandbox.site",
        "deployments/setup.py:1": "grmux_sandbox.site",
        "deployments/setup.py:2": "grmux_cli",
        "grmux_sandbox/s.py:2": "deployments",
    }


PROBE = """
import importlib, pkgutil, sys
import grmux_core
names = [m.name for m in pkgutil.walk_packages(grmux_core.__path__, "grmux_core.")]
for name in names:
    importlib.import_module(name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"prefect", "great_expectations"})
print(len(names), heavy)
"""


def test_importing_grmux_core_imports_no_prefect():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=True)
    count, heavy = out.stdout.strip().split(" ", 1)
    assert int(count) >= 4  # the probe really walked the package
    assert heavy == "[]", f"grmux_core imported {heavy}"


CLI_PROBE = """
import sys
from grmux_cli.main import build_parser
build_parser()
print(sorted({m.split(".")[0] for m in sys.modules} & {"prefect", "great_expectations", "flows", "tasks"}))
"""


def test_building_the_command_line_imports_no_prefect():
    """``grmux --help`` and a config check stay light: each command imports its engine when it runs."""
    out = subprocess.run([sys.executable, "-c", CLI_PROBE], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_the_project_stands_on_its_own_no_file_points_into_the_spec_folder():
    """Code and docs never refer to the team's ``shared`` spec folder beside the checkout: a reader
    of the repository must find what they need in ``docs/``."""
    pointer = ".." + "/shared"  # spelled in two parts so this file does not match itself
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    offenders = []
    for name in filter(None, tracked.decode().split("\0")):
        path = ROOT / name
        if path.suffix in (".png", ".jpg", ".mp4", ".mp3") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pointer in line:
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
