"""Reader of RecBole atomic files (``.inter``, ``.item``, ``.user``).

An atomic file is tab-separated text whose header fields are ``name:type`` (``token``,
``token_seq``, ``float``, ``float_seq``). Values are returned as strings keyed by the bare
name; callers convert them. Quotes are not special (RecBole files are plain TSV).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from billp.data.errors import DataError

logger = logging.getLogger(__name__)

FIELD_TYPES: frozenset[str] = frozenset({"token", "token_seq", "float", "float_seq"})
"""Header types RecBole defines."""

ENCODING = "utf-8"
FALLBACK_ENCODING = "latin-1"
"""Used, with a warning, for files that are not valid UTF-8 (it decodes any byte)."""


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"atomic file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(
            f"atomic file {path} is a directory, expected a tab-separated file"
        ) from None
    try:
        return raw.decode(ENCODING)
    except UnicodeDecodeError as exc:
        logger.warning(
            "%s is not valid %s (%s); reading it as %s", path, ENCODING, exc, FALLBACK_ENCODING
        )
        return raw.decode(FALLBACK_ENCODING)


def parse_header(path: Path, header: Sequence[str]) -> list[str]:
    """Bare column names of a header row ``name:type``; a bare ``name`` is accepted too."""
    names: list[str] = []
    for position, field in enumerate(header, start=1):
        name, sep, kind = field.strip().rpartition(":")
        if not sep:
            name, kind = kind, ""
        if not name:
            raise DataError(f"{path}: header column {position} ({field!r}) has no name")
        if kind and kind not in FIELD_TYPES:
            raise DataError(
                f"{path}: header column {field!r} has type {kind!r}, expected one of "
                f"{sorted(FIELD_TYPES)}"
            )
        if name in names:
            raise DataError(f"{path}: column {name!r} appears twice in the header")
        names.append(name)
    return names


def read_atomic_file(path: Path, required: Sequence[str]) -> dict[str, list[str]]:
    """Read a RecBole atomic file into columns of strings keyed by bare column name.

    Blank lines are skipped; a row with fewer fields than the header is padded with empty
    strings (missing trailing values), a row with more is an error.

    Raises:
        DataError: the file is missing, a required column is absent, or a row is malformed.
    """
    path = Path(path)
    text = _read_text(path)
    rows = csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(rows, None)
    if header is None:
        raise DataError(f"atomic file {path} is empty, expected a header line 'name:type<TAB>...'")
    names = parse_header(path, header)
    missing = [name for name in required if name not in names]
    if missing:
        raise DataError(f"{path}: required column(s) {missing} missing; the header has {names}")
    columns: list[list[str]] = [[] for _ in names]
    width = len(names)
    for line_number, row in enumerate(rows, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) > width:
            raise DataError(
                f"{path}: line {line_number} has {len(row)} tab-separated fields, "
                f"the header has {width}"
            )
        for index in range(width):
            columns[index].append(row[index].strip() if index < len(row) else "")
    return dict(zip(names, columns, strict=True))
