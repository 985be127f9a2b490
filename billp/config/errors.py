"""The configuration error and the phrasing of validation errors by dotted field."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the config."""


def format_validation_error(error: ValidationError) -> str:
    """Turn a Pydantic error into lines that each name a dotted field."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "<root>"
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"  {loc}: {item['msg']}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)
