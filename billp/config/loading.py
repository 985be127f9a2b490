"""Reading configs: TOML file plus dotted overrides, and trees recorded by earlier runs."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from billp.config.commands import RunConfig
from billp.config.dotted import set_dotted
from billp.config.errors import ConfigError, format_validation_error
from billp.config.legacy import move_legacy_override, move_legacy_sections
from billp.config.toml_tree import apply_unset

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_model_config(
    model: type[ConfigT],
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ConfigT:
    """Build any config ``model`` from an optional TOML file and dotted overrides.

    The one reader behind every command's config (simulate, ``billp.le``, ``billp.rl``);
    sections of an older layout are moved or dropped as ``model.legacy_sections`` says.

    Raises:
        ConfigError: the file is missing or unreadable, or a value is invalid.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        apply_unset(tree, str(path))
        move_legacy_sections(tree, model, str(path))
    for dotted, value in (overrides or {}).items():
        moved = move_legacy_override(dotted, model)
        if moved is not None:
            set_dotted(tree, moved, value)
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        message = format_validation_error(exc)
        if path is not None:
            message = message.replace(
                "invalid configuration:", f"invalid configuration (config file {path}):", 1
            )
        raise ConfigError(message) from None


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from an optional TOML file and dotted overrides.

    Raises:
        ConfigError: the file is missing or unreadable, or a value is invalid.
    """
    return load_model_config(RunConfig, path, overrides)


def validate_recorded(model: type[ConfigT], recorded: Mapping[str, Any], source: str) -> ConfigT:
    """``model`` from a config tree recorded by an earlier run (a checkpoint's manifest),
    with sections of an older layout moved or dropped as ``model.legacy_sections`` says."""
    tree = copy.deepcopy(dict(recorded))
    move_legacy_sections(tree, model, source)
    return model.model_validate(tree)
