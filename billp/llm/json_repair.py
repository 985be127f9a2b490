"""Best-effort recovery of a JSON object from an LLM's free text.

Handles code fences, prose around the object (the first balanced ``{...}``), single-quoted
strings, trailing commas, Python's ``True``/``False``/``None``, bare identifier keys and a
reply cut off mid-object (open strings and brackets are closed, a dangling member dropped).
Every pass is a linear scan over at most :data:`MAX_REPAIR_CHARS` characters, tried a bounded
number of times, so hostile or huge input costs little.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

MAX_REPAIR_CHARS = 20_000
"""Characters of a reply that repair looks at; the rest is ignored."""
MAX_FENCES = 4
"""Code-fenced blocks tried before the whole text."""
MAX_OBJECT_STARTS = 8
"""Opening braces tried as the start of the object, per candidate text."""
MAX_TRUNCATION_CUTS = 4
"""Trailing members dropped one by one when closing a cut-off object."""
FENCE = "```"
PYTHON_WORDS = {"True": "true", "False": "false", "None": "null"}
OPENERS = {"{": "}", "[": "]"}


def repair_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object recoverable from ``text``, or ``None``."""
    text = text[:MAX_REPAIR_CHARS]
    for candidate in [*_fenced_blocks(text), text]:
        start = candidate.find("{")
        for _ in range(MAX_OBJECT_STARTS):
            if start < 0:
                break
            found = _object_at(candidate, start)
            if found is not None:
                return found
            start = candidate.find("{", start + 1)
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


def _loads_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _object_at(text: str, start: int) -> dict[str, Any] | None:
    """The object whose ``{`` is at ``start``: balanced, or closed if the text is cut off."""
    end, _, _ = _scan(text, start)
    if end is not None:
        return _loads_object(normalise(text[start : end + 1]))
    fragment = normalise(text[start:])
    closed = _close(fragment)
    if closed is not None:
        found = _loads_object(closed)
        if found is not None:
            return found
    _, _, commas = _scan(fragment, 0)
    for cut in reversed(commas):
        closed = _close(fragment[:cut])
        found = None if closed is None else _loads_object(closed)
        if found is not None:
            return found
    return None


def _scan(text: str, start: int) -> tuple[int | None, list[str], deque[int]]:
    """Scan from ``start`` (a bracket): (index closing it or None, open brackets, last commas).

    Strings may be double- or single-quoted; brackets and commas inside them do not count.
    """
    stack: list[str] = []
    commas: deque[int] = deque(maxlen=MAX_TRUNCATION_CUTS)
    quote: str | None = None
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
        elif char in OPENERS:
            stack.append(char)
        elif char in "}]":
            if stack:
                stack.pop()
            if not stack:
                return index, [], commas
        elif char == ",":
            commas.append(index)
    return None, stack, commas


def _close(fragment: str) -> str | None:
    """``fragment`` (normalised, cut off) with its open brackets closed, or None if hopeless."""
    body = fragment.rstrip()
    if body.endswith(","):
        body = body[:-1].rstrip()
    if body.endswith(":"):
        return None
    end, stack, _ = _scan(body, 0)
    if end is not None or not stack:
        return None
    return body + "".join(OPENERS[opener] for opener in reversed(stack))


def normalise(text: str) -> str:
    """Rewrite near-JSON as JSON in one linear pass.

    Single-quoted strings become double-quoted, an unterminated string is closed, Python
    literals become JSON ones, bare identifier keys are quoted and trailing commas dropped.
    """
    out: list[str] = []
    length = len(text)
    index = 0
    while index < length:  # every branch advances index by at least one
        char = text[index]
        if char in "\"'":
            string, index = _read_string(text, index)
            out.append(string)
        elif char.isalpha() or char == "_":
            end = index
            while end < length and (text[end].isalnum() or text[end] == "_"):
                end += 1
            word = text[index:end]
            after = end
            while after < length and text[after] in " \t\r\n":
                after += 1
            if after < length and text[after] == ":" and word not in PYTHON_WORDS:
                out.append(json.dumps(word))
            else:
                out.append(PYTHON_WORDS.get(word, word))
            index = end
        elif char == ",":
            after = index + 1
            while after < length and text[after] in " \t\r\n":
                after += 1
            if after < length and text[after] not in "}]":
                out.append(",")
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The string opening at ``start`` as a double-quoted JSON string, and the index after it."""
    quote = text[start]
    parts: list[str] = ['"']
    index = start + 1
    length = len(text)
    while index < length and text[index] != quote:
        char = text[index]
        if char == "\\":
            if index + 1 >= length:
                break  # a lone trailing backslash would escape the closing quote
            following = text[index + 1]
            parts.append("'" if following == "'" else text[index : index + 2])
            index += 2
            continue
        parts.append('\\"' if char == '"' else char)
        index += 1
    parts.append('"')
    return "".join(parts), min(index + 1, length)
