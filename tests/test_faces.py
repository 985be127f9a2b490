"""No compatibility re-exports: every import names the module that defines the name, modules
re-export nothing, and a package's face exports only what something imports through it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("billp", "tests", "eval")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in (REPO / "billp").rglob("*.py")}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _defined(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level (in ``if`` blocks too)."""
    names: set[str] = set()
    nodes = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.If):
            nodes += [*node.body, *node.orelse]
    return names


DEFINED = {name: _defined(tree) for name, tree in TREES.items()}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    """Names imported through each package face (from-imports and attribute access on an
    imported package), and the from-imports that name a module not defining the name."""
    through: dict[str, set[str]] = defaultdict(set)
    indirect = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            aliases: dict[str, str] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in MODULES:
                    for alias in node.names:
                        full = f"{node.module}.{alias.name}"
                        if full in MODULES:
                            aliases[alias.asname or alias.name] = full
                        elif _is_package(node.module):
                            through[node.module].add(alias.name)
                        elif alias.name not in DEFINED[node.module]:
                            indirect.append(f"{path.relative_to(REPO)}: {full}")
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    module = aliases.get(node.value.id)
                    if module is not None and _is_package(module):
                        through[module].add(node.attr)
    return through, indirect


def test_imports_name_the_defining_module_and_faces_export_what_is_used() -> None:
    through, indirect = _imports()
    assert not indirect, f"imports through a module that does not define the name: {indirect}"
    unused = []
    for module, tree in TREES.items():
        exported = {
            alias.asname or alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module != "__future__"
            for alias in node.names
        }
        if _is_package(module):
            unused += [
                f"{module}.{name}"
                for name in sorted(exported - through[module])
                if f"{module}.{name}" not in MODULES
            ]
        else:
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
                ):
                    listed = {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
                    unused += [f"{module}.{n} (re-exported)" for n in listed - DEFINED[module]]
    assert not unused, f"re-exported names nobody imports through their face: {unused}"
