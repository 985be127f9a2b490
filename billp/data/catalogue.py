"""The item catalogue: dense item ids, titles, years and genre sets.

Dense ids ``0..n-1`` follow the order of the ``.item`` file; they are the env's actions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import operator
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from billp.data.errors import DataError, UnknownItemError
from billp.data.recbole_files import read_atomic_file

logger = logging.getLogger(__name__)

ITEM_ID_COLUMN = "item_id"
TITLE_COLUMNS: tuple[str, ...] = ("movie_title", "title", "name")
YEAR_COLUMNS: tuple[str, ...] = ("release_year", "year")
GENRE_COLUMNS: tuple[str, ...] = ("class", "genre", "genres", "categories")
"""Accepted names of the ``.item`` columns, first match wins (RecBole datasets differ)."""

NO_GENRES_TEXT = "none"
UNTITLED_PREFIX = "item"
"""Title given to an item whose title field is empty: ``item <raw id>``."""


class Item(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(frozen=True)

    item_id: int
    raw_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]

    @property
    def label(self) -> str:
        """Title with the year, e.g. ``Toy Story (1995)``."""
        if self.year is None or self.title.endswith(f"({self.year})"):
            return self.title
        return f"{self.title} ({self.year})"

    @property
    def text(self) -> str:
        """One-line description used in prompts and embeddings."""
        genres = ", ".join(self.genres) if self.genres else NO_GENRES_TEXT
        return f"{self.label}; genres: {genres}"


class Catalogue:
    """All items, indexable by dense id, with genre lookups precomputed."""

    def __init__(self, items: Sequence[Item]) -> None:
        """Validate that ``items[k].item_id == k`` and raw ids are unique.

        Raises:
            DataError: the catalogue is empty, ids are not dense, or a raw id repeats.
        """
        if not items:
            raise DataError("a catalogue needs at least one item")
        self._items: tuple[Item, ...] = tuple(items)
        self._by_raw: dict[str, int] = {}
        for position, item in enumerate(self._items):
            if item.item_id != position:
                raise DataError(
                    f"catalogue item ids must be dense 0..n-1 in order: position {position} "
                    f"holds item_id {item.item_id} ({item.title!r})"
                )
            if item.raw_id in self._by_raw:
                raise DataError(f"raw item id {item.raw_id!r} appears twice in the catalogue")
            self._by_raw[item.raw_id] = position
        self.genres: list[str] = sorted({g for item in self._items for g in item.genres})
        self.genre_sets: list[frozenset[str]] = [frozenset(item.genres) for item in self._items]
        column = {genre: index for index, genre in enumerate(self.genres)}
        matrix = np.zeros((len(self._items), len(self.genres)), dtype=bool)
        for item in self._items:
            for genre in item.genres:
                matrix[item.item_id, column[genre]] = True
        matrix.setflags(write=False)
        self.genre_matrix: np.ndarray = matrix

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Catalogue({len(self)} items, {len(self.genres)} genres)"

    def check_id(self, item_id: int | np.integer[Any]) -> int:
        """``item_id`` as a plain int if it is in the catalogue.

        Raises:
            UnknownItemError: it is not an integer in ``0..n-1``.
        """
        try:
            index = operator.index(item_id)
        except TypeError:
            raise UnknownItemError(
                f"item id {item_id!r} is not an integer; the catalogue has ids 0..{len(self) - 1}"
            ) from None
        if not 0 <= index < len(self._items):
            raise UnknownItemError(f"item id {index} is not in the catalogue of {len(self)} items")
        return index

    def __getitem__(self, item_id: int | np.integer[Any]) -> Item:
        return self._items[self.check_id(item_id)]

    def id_of_raw(self, raw_id: str) -> int:
        """Dense id of an item given its id in the source file."""
        try:
            return self._by_raw[raw_id]
        except KeyError:
            raise UnknownItemError(
                f"raw item id {raw_id!r} is not in the catalogue of {len(self)} items"
            ) from None

    def items_with_genre(self, genre: str) -> np.ndarray:
        """Ids (int64, ascending) of the items tagged with ``genre``."""
        try:
            column = self.genres.index(genre)
        except ValueError:
            raise DataError(
                f"genre {genre!r} is not in the catalogue; known genres: {self.genres}"
            ) from None
        return np.flatnonzero(self.genre_matrix[:, column]).astype(np.int64)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 hex of every item's id, raw id, title, year and genres."""
        payload = [
            [item.item_id, item.raw_id, item.title, item.year, list(item.genres)]
            for item in self._items
        ]
        blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def resolve_column(columns: dict[str, list[str]], aliases: Sequence[str]) -> str | None:
    """The first of ``aliases`` present in ``columns`` (None when none is)."""
    for name in aliases:
        if name in columns:
            return name
    return None


def require_column(
    path: Path, columns: dict[str, list[str]], aliases: Sequence[str], what: str
) -> str:
    """Like :func:`resolve_column` but a missing column is a :class:`DataError`."""
    found = resolve_column(columns, aliases)
    if found is None:
        raise DataError(
            f"{path}: no {what} column; expected one of {list(aliases)} "
            f"(the header has {list(columns)})"
        )
    return found


def parse_year(path: Path, value: str, raw_id: str) -> int | None:
    """A release year from ``1995`` or ``1995.0``; empty or non-numeric values give None."""
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        logger.debug("%s: item %s has a non-numeric year %r", path, raw_id, value)
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def read_catalogue(path: Path) -> Catalogue:
    """Build a :class:`Catalogue` from a RecBole ``.item`` file.

    Needs ``item_id``, a title column (``movie_title``/``title``/``name``) and a genre
    column (``class``/``genre``/``genres``/``categories``, space-separated tokens); a year
    column (``release_year``/``year``) is optional.

    Raises:
        DataError: the file or a required column is missing, or an item id is empty/repeated.
    """
    columns = read_atomic_file(path, required=[ITEM_ID_COLUMN])
    title_col = require_column(path, columns, TITLE_COLUMNS, "title")
    genre_col = require_column(path, columns, GENRE_COLUMNS, "genre")
    year_col = resolve_column(columns, YEAR_COLUMNS)
    items: list[Item] = []
    seen: set[str] = set()
    for row, raw_id in enumerate(columns[ITEM_ID_COLUMN]):
        line = row + 2
        if not raw_id:
            raise DataError(f"{path}: line {line} has an empty {ITEM_ID_COLUMN}")
        if raw_id in seen:
            raise DataError(f"{path}: line {line} repeats {ITEM_ID_COLUMN} {raw_id!r}")
        seen.add(raw_id)
        genres = tuple(dict.fromkeys(columns[genre_col][row].split()))
        year = parse_year(path, columns[year_col][row], raw_id) if year_col else None
        title = columns[title_col][row] or f"{UNTITLED_PREFIX} {raw_id}"
        items.append(Item(item_id=row, raw_id=raw_id, title=title, year=year, genres=genres))
    if not items:
        raise DataError(f"{path}: no items (the file has only a header)")
    return Catalogue(items)
