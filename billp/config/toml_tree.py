"""Configs as TOML-writable dicts and back: ``None`` fields, which TOML cannot hold, are listed
under one key and restored on loading, so that ``config.toml`` round-trips exactly.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from billp.config.errors import ConfigError

UNSET_KEY = "_unset"
"""Top-level TOML key listing the fields whose value is ``None`` (TOML has no null), each as
its path of keys, so that ``config.toml`` round-trips every field exactly."""


def config_to_toml_dict(config: BaseModel) -> dict[str, Any]:
    """A TOML-writable dict of a config: paths become strings; ``None`` values, which TOML
    cannot hold, are listed under :data:`UNSET_KEY` as key paths (restored on loading)."""
    data = config.model_dump(mode="json")
    unset: list[list[str]] = []

    def prune(node: Any, path: list[str]) -> Any:
        if isinstance(node, dict):
            kept = {}
            for key, value in node.items():
                if value is None:
                    unset.append([*path, key])
                else:
                    kept[key] = prune(value, [*path, key])
            return kept
        return node

    pruned = prune(data, [])
    return {UNSET_KEY: unset, **pruned} if unset else pruned


def apply_unset(tree: dict[str, Any], source: str) -> None:
    """Restore the ``None`` fields listed under :data:`UNSET_KEY`, at the top level and in
    any section (a file may nest the TOML dicts of several configs, as LE checkpoints do)."""
    for value in list(tree.values()):
        if isinstance(value, dict):
            apply_unset(value, source)
    paths = tree.pop(UNSET_KEY, [])
    if not isinstance(paths, list) or not all(
        isinstance(p, list) and p and all(isinstance(k, str) for k in p) for p in paths
    ):
        raise ConfigError(f"{source}: {UNSET_KEY} must be a list of key paths (lists of strings)")
    for path in paths:
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: {UNSET_KEY} path {path}: '{part}' is not a section")
            node = child
        node[path[-1]] = None
