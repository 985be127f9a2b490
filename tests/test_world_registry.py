"""The world registry: names, builders and the one place that knows which world is the LE."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from billp.config import EnvConfig
from billp.world_registry import WORLD_NAMES, WORLDS, world_spec

REPO = Path(__file__).resolve().parents[1]


def test_every_builder_is_importable_and_names_are_the_config_choices() -> None:
    for spec in WORLDS:
        module, function = spec.builder.split(":")
        assert callable(getattr(importlib.import_module(module), function)), spec.name
        assert EnvConfig(name=spec.name).name == spec.name
    with pytest.raises(ValueError, match="matrix"):
        EnvConfig(name="nonsense")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="known: matrix, le"):
        world_spec("nonsense")
    assert WORLD_NAMES == ("matrix", "le")


def test_no_code_tests_a_world_by_name() -> None:
    """Worlds differ through their specs, not through `if name == ...` scattered in the code."""
    pattern = re.compile(r"""[=!]= ["'](?:le|matrix)["']""")
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("billp", "eval")
        for path in sorted((REPO / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, found
