"""Sections of older config layouts: where each went, and moving them in raw trees.

A command's root model lists them in ``legacy_sections``; the loaders move each such section
(or override) to its new place, or drop it when another command reads it, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel

from billp.config.dotted import has_dotted, pop_dotted, set_dotted
from billp.config.errors import ConfigError

# The name of the module these warnings came from before the config package split: log lines
# (their format shows the logger) and filters on "billp.config" stay as they were.
logger = logging.getLogger("billp.config")


class LegacySection(NamedTuple):
    """Where a section of an older config layout went: ``target`` is its dotted place in the
    reading command's tree (``None``: the command does not use it), ``command`` the one that
    reads it now (named in the warning)."""

    target: str | None
    command: str


LE_TRAIN_COMMAND = "python -m billp.le train"
LE_EVALUATE_COMMAND = "python -m billp.le evaluate"


def move_legacy_override(dotted: str, model: type[BaseModel]) -> str | None:
    """The place of override ``dotted`` in ``model``'s tree (``None``: dropped), warning when
    it names a section of ``model.legacy_sections``."""
    legacy: Mapping[str, LegacySection] = getattr(model, "legacy_sections", {})
    for old, (target, command) in legacy.items():
        if not dotted.startswith(f"{old}."):
            continue
        if target is None:
            logger.warning(
                "override %s is ignored: `%s` reads it, this command does not", dotted, command
            )
            return None
        moved = f"{target}{dotted[len(old) :]}"
        logger.warning("override %s is deprecated: read as %s", dotted, moved)
        return moved
    return dotted


def move_legacy_sections(tree: dict[str, Any], model: type[BaseModel], source: str) -> None:
    """Apply ``model.legacy_sections`` to a raw config tree, warning once per section found."""
    legacy: Mapping[str, LegacySection] = getattr(model, "legacy_sections", {})
    for old, (target, command) in legacy.items():
        if not has_dotted(tree, old):
            continue
        if target is not None and has_dotted(tree, target):
            raise ConfigError(
                f"{source}: both [{old}] (the old place) and [{target}] are set; "
                f"{command} reads [{target}]: move the values there and drop [{old}]"
            )
        value = pop_dotted(tree, old)
        if target is None:
            logger.warning(
                "%s: [%s] is ignored: `%s` reads these settings, this command does not "
                "(drop the section)",
                source,
                old,
                command,
            )
        else:
            set_dotted(tree, target, value)
            logger.warning(
                "%s: [%s] is deprecated: read as [%s], its place in the tree of `%s` "
                "(rename the section)",
                source,
                old,
                target,
                command,
            )
