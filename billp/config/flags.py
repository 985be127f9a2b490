"""Command-line flags generated from the config tree.

Every leaf field of a config model becomes ``--section.field-name VALUE`` (underscores
may be written as dashes), documented with the field's description and default. Values
are passed to Pydantic as strings, so validation (and its error naming the dotted
field) is the same for flags and TOML. ``none`` clears an optional field; list fields
take several values; mapping fields take ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

NONE_WORD = "none"
"""The CLI spelling of 'no value' for optional fields."""
FLAG_ALIASES: dict[str, list[str]] = {"llm.server.lora": ["--llm.lora"]}
"""Shorter extra spellings of some flags."""


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return annotation, optional
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def iter_leaf_fields(
    model: type[BaseModel], prefix: str = ""
) -> typing.Iterator[tuple[str, FieldInfo, Any]]:
    """Dotted name, field info and bare annotation of every leaf field of ``model``."""
    for name, field in model.model_fields.items():
        annotation, _ = _unwrap_optional(field.annotation)
        dotted = f"{prefix}{name}"
        if _is_model(annotation):
            yield from iter_leaf_fields(annotation, f"{dotted}.")
            continue
        origin = get_origin(annotation)
        if origin is dict and _is_model(get_args(annotation)[1]):
            continue  # per-key sections (e.g. llm.roles) are set in the TOML file
        yield dotted, field, annotation


def _describe_default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return ""
    default = field.default
    return f" [default: {default}]" if default is not None else ""


def add_config_arguments(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """Add one flag per leaf field of ``model``, grouped by section."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for dotted, field, annotation in iter_leaf_fields(model):
        section = dotted.rsplit(".", 1)[0] if "." in dotted else "run"
        group = groups.setdefault(section, parser.add_argument_group(f"{section} options"))
        origin = get_origin(annotation)
        flags = [f"--{dotted.replace('_', '-')}"]
        if "_" in dotted:
            flags.append(f"--{dotted}")
        flags += FLAG_ALIASES.get(dotted, [])
        help_text = (field.description or "") + _describe_default(field)
        kwargs: dict[str, Any] = {"dest": f"cfg:{dotted}", "default": argparse.SUPPRESS}
        if origin is list:
            kwargs.update(nargs="+", metavar="VALUE")
        elif origin is dict:
            kwargs.update(nargs="+", metavar="KEY=VALUE")
        elif origin is typing.Literal:
            choices = ", ".join(str(c) for c in get_args(annotation))
            help_text += f" {{{choices}}}"
            kwargs["metavar"] = "VALUE"
        else:
            kwargs["metavar"] = getattr(annotation, "__name__", "VALUE").upper()
        group.add_argument(*flags, help=help_text.replace("%", "%%"), **kwargs)


def collect_overrides(namespace: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The dotted overrides given on the command line, ready for ``load_config``."""
    mappings = {d for d, _f, ann in iter_leaf_fields(model) if get_origin(ann) is dict}
    overrides: dict[str, Any] = {}
    for dest, value in vars(namespace).items():
        if not dest.startswith("cfg:"):
            continue
        dotted = dest[len("cfg:") :]
        if dotted in mappings and isinstance(value, list):
            pairs = [v.split("=", 1) for v in value]
            if any(len(pair) != 2 for pair in pairs):
                raise argparse.ArgumentTypeError(f"--{dotted} takes KEY=VALUE pairs, got {value}")
            value = dict(pairs)
        elif isinstance(value, str) and value.lower() == NONE_WORD:
            value = None
        overrides[dotted] = value
    return overrides
