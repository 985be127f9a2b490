"""Best-effort recovery of a JSON object from an LLM's free text, on the ``json-repair`` package.

``json_repair`` does the repairs (prose around the object, single-quoted strings, trailing
commas, Python's ``True``/``False``/``None``, bare identifier keys, a reply cut off mid-object).
A valid JSON object or Python dict literal inside prose is taken as written, before any
repair. This module only decides what it sees: ```-fenced blocks first, then the whole text,
each from its first ``{``, and only a bounded prefix of each, since the library's worst case grows
quadratically with its input. When the library finds several top-level values (prose with two
objects) the first is kept. Anything else that is not a JSON object is refused.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import json_repair

MAX_REPAIR_CHARS = 20_000
"""Characters of a reply that repair looks at; the rest is ignored."""
MAX_OBJECT_CHARS = 2_000
"""Characters from an object's ``{`` handed to json-repair (a longer object is cut off there)."""
MAX_LITERAL_ENDS = 8
"""Closing braces at which a Python dict literal is tried before json-repair."""
MAX_FENCES = 4
"""Code-fenced blocks tried before the whole text."""
FENCE = "```"


def repair_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object recoverable from ``text``, or ``None``."""
    text = text[:MAX_REPAIR_CHARS]
    for candidate in [*_fenced_blocks(text), text]:
        start = candidate.find("{")
        if start < 0:
            continue
        window = candidate[start : start + MAX_OBJECT_CHARS]
        exact = _strict_object(window)
        if exact is not None:
            return exact
        try:
            value = json_repair.loads(window)
        except (ValueError, RecursionError):  # e.g. nesting deeper than the library allows
            continue
        if isinstance(value, list) and value:  # several top-level values: the first one
            value = value[0]
        if isinstance(value, dict):
            return value
    return None


def _strict_object(window: str) -> dict[str, Any] | None:
    """The object ``window`` starts with when it is valid JSON or a Python dict literal (a
    model echoing ``repr``), exactly as written; json-repair may rewrite escapes in those
    (``'\\\\'`` came back as a quote). ``None`` when it is neither."""
    try:
        value, _ = json.JSONDecoder().raw_decode(window)
    except (ValueError, RecursionError):
        value = _python_dict(window)
    return value if isinstance(value, dict) else None


def _python_dict(window: str) -> Any:
    """``ast.literal_eval`` of the shortest prefix of ``window`` ending at one of its first
    MAX_LITERAL_ENDS ``}`` that is a literal; ``None`` if none is."""
    end = -1
    for _ in range(MAX_LITERAL_ENDS):
        end = window.find("}", end + 1)
        if end < 0:
            return None
        try:
            return ast.literal_eval(window[: end + 1])
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            continue
    return None


def _fenced_blocks(text: str) -> list[str]:
    """Contents of up to MAX_FENCES ```-fenced blocks (an unclosed last fence runs to the end)."""
    blocks: list[str] = []
    position = 0
    for _ in range(MAX_FENCES):
        opening = text.find(FENCE, position)
        if opening < 0:
            break
        body_start = text.find("\n", opening + len(FENCE))
        if body_start < 0:
            body_start = opening + len(FENCE)
        closing = text.find(FENCE, body_start)
        blocks.append(text[body_start : closing if closing >= 0 else len(text)])
        if closing < 0:
            break
        position = closing + len(FENCE)
    return blocks
