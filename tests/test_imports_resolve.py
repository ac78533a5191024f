"""Every first-party import in the tree resolves, the ones inside functions included.

Heavy imports are deferred into functions (DAG files must parse instantly), so a module that
moved leaves stale imports no collection or lint step executes; this reads them all and checks
each module exists and each imported name is defined there, without running anything heavy.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("freshlm", "crawlers", "expectations", "training", "sandbox", "tests")
SOURCES = ("freshlm", "crawlers", "expectations", "training", "sandbox", "dags", "bench", "tests")


def _imports() -> list[tuple[str, int, str, str | None]]:
    """(file, line, module, name or None) of every absolute first-party import."""
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.split(".")[0] in FIRST_PARTY:
                            found.append(
                                (str(path.relative_to(ROOT)), node.lineno, alias.name, None)
                            )
                elif (
                    isinstance(node, ast.ImportFrom)
                    and node.level == 0
                    and node.module
                    and node.module.split(".")[0] in FIRST_PARTY
                ):
                    for alias in node.names:
                        found.append(
                            (str(path.relative_to(ROOT)), node.lineno, node.module, alias.name)
                        )
    return found


def _defines(module: str, name: str) -> bool:
    """Whether ``module`` has ``name``: a submodule, or a top-level binding in its source."""
    spec = importlib.util.find_spec(module)
    is_package = spec.submodule_search_locations is not None
    if is_package and importlib.util.find_spec(f"{module}.{name}") is not None:
        return True
    source = Path(spec.origin).read_text(encoding="utf-8")
    tree = ast.parse(source)
    if any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for node in tree.body):
        return True  # names made on first use (freshlm.artifacts' Assets)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name and node in tree.body:
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            if node in tree.body and name in names:
                return True
        elif isinstance(node, ast.Import | ast.ImportFrom) and node in tree.body:
            if any((alias.asname or alias.name.split(".")[0]) == name for alias in node.names):
                return True
        elif isinstance(node, ast.If) and node in tree.body:
            # TYPE_CHECKING blocks and the like: bindings one level down count too.
            for inner in node.body:
                if isinstance(inner, ast.Import | ast.ImportFrom) and any(
                    (alias.asname or alias.name) == name for alias in inner.names
                ):
                    return True
    return False


def test_every_first_party_import_resolves():
    problems = []
    for path, line, module, name in _imports():
        if importlib.util.find_spec(module) is None:
            problems.append(f"{path}:{line}: no module {module}")
        elif name is not None and name != "*" and not _defines(module, name):
            problems.append(f"{path}:{line}: {module} has no {name}")
    assert not problems, "stale imports:\n" + "\n".join(problems)


@pytest.mark.parametrize("module", ["freshlm.demo", "freshlm.world", "freshlm.demo_nights"])
def test_the_sandbox_is_not_in_the_core(module):
    assert importlib.util.find_spec(module) is None
