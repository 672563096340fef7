"""Structure rules that keep the project easy to inherit: every module says why it exists, and a plugin is one
package (the import floors are checked by ``tests/test_layers.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations/versions" not in p.as_posix())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_module_has_a_docstring():
    missing = [str(p.relative_to(ROOT)) for folder in ("core", "schema", "plugins") for p in python_files(folder)
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert missing == []


def test_each_plugin_is_one_package():
    for child in (ROOT / "plugins").iterdir():
        if child.name.startswith(("_", ".")) or child.suffix == ".py":
            continue
        assert (child / "__init__.py").exists(), f"plugins/{child.name} is not a package"
