"""The first-party code has no import cycles and no oversized modules.

Only imports that run when a module is imported count: module level, class bodies and
``if``/``try`` blocks, but not imports inside functions (lazy by design, e.g. Celery
tasks importing services) nor ``if TYPE_CHECKING:`` blocks (never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gcai", "annotations", "surveys")
MAX_LINES = 700


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every first-party module but migrations."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _eager_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run at import time (see the module docstring)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _eager_imports(node.body)
            yield from _eager_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _eager_imports(block)
            for handler in node.handlers:
                yield from _eager_imports(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _eager_imports(node.body)


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]
) -> Iterator[str]:
    """First-party modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        # `from package import submodule` loads the submodule; otherwise the module.
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
            for alias in node.names
        ]
    for name in names:
        # `import a.b.c` where only a.b is first-party still depends on a.b.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            yield name


def import_graph() -> dict[str, set[str]]:
    files = _module_files()
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {
            target
            for node in _eager_imports(tree.body)
            for target in _targets(node, module, is_package, known)
            if target != module
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_first_party_modules_import_each_other_without_cycles():
    graph = import_graph()
    assert len(graph) > 100  # the walk found the code
    assert "gcai.core.types" in graph["gcai.core.cluster"]  # and its imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_reports_the_cycle_and_ignores_lazy_and_type_checking_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import gcai.core.types\n"
        "if TYPE_CHECKING:\n    from gcai.core import cluster\n"
        "try:\n    from . import voting\nexcept ImportError:\n    pass\n"
        "def f():\n    from gcai.core import icai\n"
    )
    known = {"gcai.core.types", "gcai.core.cluster", "gcai.core.voting", "gcai.core.icai"}
    found = {
        target
        for node in _eager_imports(tree.body)
        for target in _targets(node, "gcai.core.grounded", False, known)
    }
    assert found == {"gcai.core.types", "gcai.core.voting"}


def test_no_module_is_over_700_lines():
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in _module_files().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these modules (over {MAX_LINES} lines): {too_long}"


def test_every_job_kind_names_registered_celery_tasks():
    """The engine imports its tasks by dotted path; a typo would only fail at run time."""
    from django.utils.module_loading import import_string

    from gcai.celery import app
    from gcai.constitutions.evaluation_jobs import EVALUATION
    from gcai.constitutions.runs import ENGINE as RUNS
    from gcai.modeling.steering_jobs import ENGINE as STEERING

    for kind in (RUNS, EVALUATION, STEERING):
        for path in (kind.step_task, kind.batch_task):
            task = import_string(path)
            assert task.name in app.tasks, path
