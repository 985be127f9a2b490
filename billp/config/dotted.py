"""Dotted paths (``env.le.seed``) in raw config trees: set, pop and test a value."""

from __future__ import annotations

from typing import Any

from billp.config.errors import ConfigError


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted == 'a.b'``, creating levels as needed."""
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: '{part}' is a value, not a section")
        node = child
    node[leaf] = value


def pop_dotted(tree: dict[str, Any], dotted: str) -> Any:
    """Remove and return ``tree``'s value at ``dotted`` (``None`` when absent)."""
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return node.pop(leaf, None) if isinstance(node, dict) else None


def has_dotted(tree: dict[str, Any], dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
