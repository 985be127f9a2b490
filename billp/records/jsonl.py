"""Reading the JSONL files of a run directory: one rule for bad lines, for every reader.

Lines are split on ``\\n`` only (a JSON string may hold U+2028 and other line breaks that
``str.splitlines`` would split on). A *torn* tail, which only an interrupted append leaves,
is skipped with a warning: bytes after the last newline, or a last line that is not a JSON
object. A bad line anywhere else is no crash's doing: :class:`RunFileError` names the file and
the line. Writers that append again (``--resume``) truncate the torn tail on disk first.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from billp.records.files import RunFileError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def _parse_lines(path: Path) -> tuple[list[dict[str, Any]], int, int]:
    """Complete records of ``path``, the byte length they span, and the file's length."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0, 0
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, raw in enumerate(complete, 1):
        end = good + len(raw) + 1
        if not raw.strip():
            good = end
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
        except ValueError as exc:
            if number == len(complete) and not tail:
                break  # the last line itself is torn
            raise RunFileError(
                f"{path} line {number} is not a valid JSON record ({exc}); only a torn last "
                "line can come from an interrupted write, so the file was damaged otherwise: "
                "restore it from a backup or start a new run"
            ) from None
        records.append(record)
        good = end
    return records, good, len(data)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete records of a JSONL run file; a torn tail is skipped with a warning."""
    path = Path(path)
    records, good, size = _parse_lines(path)
    if good != size:
        log.warning(
            "%s: skipping a torn last line (%d bytes left by an interrupted write)",
            path,
            size - good,
        )
    return records


def read_jsonl_repairing(path: Path) -> list[dict[str, Any]]:
    """The complete records of ``path``, truncating a torn tail on disk first (so the next
    append never glues onto it)."""
    path = Path(path)
    records, good, size = _parse_lines(path)
    if good != size:
        log.warning(
            "%s: truncating a torn last line (%d bytes left by an interrupted write); "
            "its episode is played again",
            path,
            size - good,
        )
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, good)
            os.fsync(fd)
        finally:
            os.close(fd)
    return records


def validate_line(path: Path, model: type[M], line: dict[str, Any], number: int) -> M:
    """``line`` (the ``number``-th record of ``path``) as ``model``, or a
    :class:`RunFileError` naming the file, the record and the first bad field."""
    try:
        return model.model_validate(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<record>"
        raise RunFileError(
            f"{path}: record {number} is not a valid {model.__name__} "
            f"(field {where}: {first['msg']}); restore the file or start a new run"
        ) from None
