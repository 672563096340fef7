"""The floors of aidgraph import only downward, and no module imports itself in a circle.

Read from the source (``ast``), every import counts: top-level, inside functions and under ``TYPE_CHECKING``
alike, so a cycle cannot hide in a function body. The floors, from the ground up, are listed in
:data:`FLOORS`; siblings on one floor (workflow, monitoring, search) may not import each other unless
:data:`SIBLING_IMPORTS` declares it. Plugins import only the facade :mod:`aidgraph.plugin` and other plugins.
Imports stand at the top of their module: one inside a function body must be listed, with its reason, in
:data:`FUNCTION_LEVEL_IMPORTS`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"aidgraph.core": ROOT / "core", "aidgraph.schema": ROOT / "schema",
                "aidgraph.plugins": ROOT / "plugins"}

FLOORS: list[tuple[str, ...]] = [
    ("aidgraph.core.storage",),
    ("aidgraph.core.access",),
    ("aidgraph.core.graph",),
    ("aidgraph.core.policy",),
    ("aidgraph.core.workflow", "aidgraph.core.monitoring", "aidgraph.core.search"),
    ("aidgraph.schema",),
    ("aidgraph.plugin",),
    ("aidgraph.plugins",),
    ("aidgraph.core.app",),
]
"""Floors from the ground up; a module may import its own floor's package and any floor below."""

SIBLING_IMPORTS: set[tuple[str, str]] = set()
"""(importer, imported) pairs of same-floor siblings allowed to import each other (none today)."""

FUNCTION_LEVEL_IMPORTS: dict[tuple[str, str, str], str] = {
    ("aidgraph.core.graph.exports", "_xlsx", "xlsxwriter"):
        "~20 ms at import and only XLSX exports use it: not paid by every CLI command and server start",
    ("aidgraph.core.workflow.statistics", "to_xlsx", "xlsxwriter"):
        "~20 ms at import and only the XLSX statistics use it: not paid by every CLI command and server start",
}
"""The imports allowed inside a function body: (module, function, imported module) -> why it cannot be at the top.
Imports belong at the top of the module, where a reader sees what it depends on and an import error shows at start.
An entry is for a cost (a heavy import only a rare path needs) or a real cycle; the floors above rule out cycles,
so "it would be a cycle" means the floors are wrong. The import line itself carries a comment saying why."""


def module_files() -> dict[str, Path]:
    found = {"aidgraph": ROOT / "aidgraph" / "__init__.py", "aidgraph.plugin": ROOT / "aidgraph" / "plugin.py"}
    for prefix, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            if "migrations/versions" in path.as_posix() or "fixtures" in path.parts:
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((prefix, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = module_files()


def imports_of(name: str, path: Path) -> set[str]:
    """The aidgraph modules ``name`` imports (a ``from package import module`` names the module)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("aidgraph")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("aidgraph"):
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.add(sub if sub in MODULES else module)
    return {m for m in out if m != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def floor_of(module: str) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for rank, floor in enumerate(FLOORS):
        for package in floor:
            if (module == package or module.startswith(package + ".")) and (
                    best is None or len(package) > len(best[1])):
                best = (rank, package)
    return best


def test_every_module_is_on_a_floor():
    assert [m for m in MODULES if m not in ("aidgraph", "aidgraph.core") and floor_of(m) is None] == []


def test_imports_go_only_downward():
    upward = []
    for importer, imported in sorted((a, b) for a, bs in GRAPH.items() for b in bs):
        mine, theirs = floor_of(importer), floor_of(imported)
        if mine is None or theirs is None:
            continue
        if theirs[0] > mine[0]:
            upward.append(f"{importer} -> {imported} (floor {mine[1]} imports {theirs[1]} above it)")
        elif theirs[0] == mine[0] and theirs[1] != mine[1] and (mine[1], theirs[1]) not in SIBLING_IMPORTS:
            upward.append(f"{importer} -> {imported} (sibling {theirs[1]} is not declared)")
    assert upward == []


def test_core_never_imports_a_plugin():
    offenders = [f"{a} -> {b}" for a, bs in GRAPH.items() if a.startswith("aidgraph.core")
                 for b in bs if b.startswith("aidgraph.plugins")]
    assert offenders == []


def test_plugins_import_only_the_facade_and_other_plugins():
    offenders = [f"{a} -> {b}" for a, bs in GRAPH.items() if a.startswith("aidgraph.plugins")
                 for b in bs if b != "aidgraph.plugin" and not b.startswith("aidgraph.plugins")]
    assert offenders == []


def test_no_import_cycle():
    """Tarjan's strongly connected components over the module graph: every component is one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    edges = defaultdict(set, {a: {b for b in bs if b in MODULES} for a, bs in GRAPH.items()})

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    assert cycles == []


def test_every_floor_package_says_what_it_is_for():
    for floor in FLOORS:
        for package in floor:
            path = MODULES[package]
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            assert doc and len(doc) > 40, f"{package} has no docstring saying what the floor is for"


def test_the_facade_exports_what_it_imports():
    import aidgraph.plugin as facade

    missing = [name for name in facade.__all__ if not hasattr(facade, name)]
    assert missing == [] and len(set(facade.__all__)) == len(facade.__all__)


def function_level_imports(path: Path) -> list[tuple[str, str, int]]:
    """(function's qualified name, imported module, line) of every import inside a function body of ``path``."""
    found: list[tuple[str, str, int]] = []

    def walk(node: ast.AST, where: str | None, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(child, f"{scope}{child.name}", f"{scope}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, where, f"{scope}{child.name}.")
            elif isinstance(child, (ast.Import, ast.ImportFrom)) and where is not None:
                names = [a.name for a in child.names] if isinstance(child, ast.Import) else \
                    ["." * child.level + (child.module or "")]
                found.extend((where, name, child.lineno) for name in names)
            else:
                walk(child, where, scope)

    walk(ast.parse(path.read_text(encoding="utf-8")), None, "")
    return found


def test_imports_are_at_module_level():
    """No import inside a function body except the commented ones of :data:`FUNCTION_LEVEL_IMPORTS`."""
    seen: set[tuple[str, str, str]] = set()
    unlisted, uncommented = [], []
    for module, path in sorted(MODULES.items()):
        lines = path.read_text(encoding="utf-8").splitlines()
        for function, imported, line in function_level_imports(path):
            key = (module, function, imported)
            seen.add(key)
            if key not in FUNCTION_LEVEL_IMPORTS:
                unlisted.append(f"{path.relative_to(ROOT)}:{line} {function}() imports {imported}")
            elif "#" not in lines[line - 1]:
                uncommented.append(f"{path.relative_to(ROOT)}:{line} {function}() imports {imported} without a "
                                   "comment saying why")
    assert unlisted == [], ("move these imports to the top of their module (or list them, with the reason, in "
                            "FUNCTION_LEVEL_IMPORTS and comment the line):\n" + "\n".join(unlisted))
    assert uncommented == [], "\n".join(uncommented)
    assert sorted(set(FUNCTION_LEVEL_IMPORTS) - seen) == [], "stale FUNCTION_LEVEL_IMPORTS entries"
    assert all(reason.strip() for reason in FUNCTION_LEVEL_IMPORTS.values())
