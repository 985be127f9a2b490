"""Datasets: interactions, the user split and the episodes' starting histories.

Design (shared by the simulator and the agents):

* The simulator's rating model is fitted on ``train_interactions`` of ALL users, so it can
  score every user. ``train_interactions`` is each user's earliest ``1 - holdout_fraction``
  share of interactions (never fewer than ``history_length`` when the user has them).
* ``heldout_interactions`` (each user's latest share) are never seen by the simulator; they
  are for fidelity checks of the simulator.
* Users are split, with ``DataConfig.split_seed``, into train users (episodes that build
  the agent's memories) and test users (evaluation episodes).
* An episode for user ``u`` starts from the last ``history_length`` items of ``u``'s train part.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from billp.config import DataConfig
from billp.data.catalogue import Catalogue, read_catalogue, resolve_column
from billp.data.errors import DataError, UnknownUserError
from billp.data.movielens import movielens_100k_dir
from billp.data.recbole_files import read_atomic_file

logger = logging.getLogger(__name__)

USER_ID_COLUMN = "user_id"
ITEM_ID_COLUMN = "item_id"
RATING_COLUMNS: tuple[str, ...] = ("rating",)
TIMESTAMP_COLUMNS: tuple[str, ...] = ("timestamp",)
IMPLICIT_RATING = 1.0
"""Rating given to every interaction of a dataset without a rating column."""
RATING_MIN = 1.0
RATING_MAX = 5.0
"""The explicit rating scale: logged ratings, and every world's rewards, lie in it."""
RATING_SCALE: tuple[float, float] = (RATING_MIN, RATING_MAX)
"""The reward scale of the simulated users; ratings outside it are reported."""
FINGERPRINT_VERSION = "billp-dataset-1"


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays of interactions, sorted by (user, timestamp, original row order)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray

    def __post_init__(self) -> None:
        lengths = {len(self.users), len(self.items), len(self.ratings), len(self.timestamps)}
        if len(lengths) != 1:
            raise DataError(
                "interaction arrays differ in length: "
                f"users {len(self.users)}, items {len(self.items)}, "
                f"ratings {len(self.ratings)}, timestamps {len(self.timestamps)}"
            )

    def __len__(self) -> int:
        return len(self.users)

    def take(self, index: np.ndarray | slice) -> Interactions:
        """The interactions selected by a slice, boolean mask or index array."""
        return Interactions(
            users=self.users[index],
            items=self.items[index],
            ratings=self.ratings[index],
            timestamps=self.timestamps[index],
        )


def make_interactions(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray
) -> Interactions:
    """Typed, read-only :class:`Interactions` sorted by (user, timestamp, given order)."""
    users = np.asarray(users, dtype=np.int64)
    order = np.lexsort((np.arange(len(users)), np.asarray(timestamps, dtype=np.float64), users))
    return Interactions(
        users=_read_only(users[order]),
        items=_read_only(np.asarray(items, dtype=np.int64)[order]),
        ratings=_read_only(np.asarray(ratings, dtype=np.float32)[order]),
        timestamps=_read_only(np.asarray(timestamps, dtype=np.float64)[order]),
    )


class UserSplit(BaseModel):
    """Dense user ids of the train users (memory building) and test users (evaluation)."""

    train_users: list[int]
    test_users: list[int]


def split_users(n_users: int, test_fraction: float, seed: int) -> UserSplit:
    """Seeded split of ``0..n_users-1``; both sides get at least one user."""
    if n_users < 2:
        raise DataError(f"splitting users needs at least 2 users, the dataset has {n_users}")
    n_test = min(max(round(test_fraction * n_users), 1), n_users - 1)
    permutation = np.random.default_rng(seed).permutation(n_users)
    return UserSplit(
        train_users=sorted(int(u) for u in permutation[n_test:]),
        test_users=sorted(int(u) for u in permutation[:n_test]),
    )


class Dataset:
    """A loaded dataset: catalogue, users, interactions and their train/held-out parts."""

    def __init__(
        self,
        name: str,
        catalogue: Catalogue,
        user_raw_ids: Sequence[str],
        interactions: Interactions,
        config: DataConfig,
        fingerprint: str,
    ) -> None:
        """Split ``interactions`` (dense ids, sorted as :func:`make_interactions` sorts).

        Raises:
            DataError: an interaction names a user or item outside the given ranges.
        """
        self.name = name
        self.catalogue = catalogue
        self.user_raw_ids: list[str] = list(user_raw_ids)
        self.n_users = len(self.user_raw_ids)
        self.config = config
        self.fingerprint = fingerprint
        self.interactions = interactions
        if len(interactions) and (
            interactions.users.min() < 0 or interactions.users.max() >= self.n_users
        ):
            raise DataError(f"interactions name users outside 0..{self.n_users - 1}")
        if len(interactions) and (
            interactions.items.min() < 0 or interactions.items.max() >= len(catalogue)
        ):
            raise DataError(f"interactions name items outside 0..{len(catalogue) - 1}")
        users = interactions.users
        starts = np.searchsorted(users, np.arange(self.n_users), side="left")
        ends = np.searchsorted(users, np.arange(self.n_users), side="right")
        counts = ends - starts
        n_heldout = np.floor(config.holdout_fraction * counts).astype(np.int64)
        n_train = np.maximum(counts - n_heldout, np.minimum(counts, config.history_length))
        rank = np.arange(len(users)) - starts[users]
        train_mask = rank < n_train[users]
        self.train_interactions = interactions.take(train_mask)
        self.heldout_interactions = interactions.take(~train_mask)
        self._train_starts = np.searchsorted(
            self.train_interactions.users, np.arange(self.n_users), side="left"
        )
        self._train_ends = np.searchsorted(
            self.train_interactions.users, np.arange(self.n_users), side="right"
        )
        self.split = split_users(self.n_users, config.test_user_fraction, config.split_seed)
        self.item_popularity: np.ndarray = _read_only(
            np.bincount(self.train_interactions.items, minlength=len(catalogue)).astype(np.int64)
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {self.n_users} users, {len(self.catalogue)} items, "
            f"{len(self.interactions)} interactions, {len(self.train_interactions)} train)"
        )

    def check_user(self, user: int) -> int:
        """``user`` as a plain int if it is a dense user id of this dataset."""
        if isinstance(user, bool) or not isinstance(user, int | np.integer):
            raise UnknownUserError(f"user id {user!r} is not an integer")
        if not 0 <= int(user) < self.n_users:
            raise UnknownUserError(
                f"user id {user} is not in dataset {self.name!r} of {self.n_users} users"
            )
        return int(user)

    def user_log(self, user: int) -> Interactions:
        """The user's train part, chronological."""
        index = self.check_user(user)
        return self.train_interactions.take(
            slice(int(self._train_starts[index]), int(self._train_ends[index]))
        )

    def starting_history(self, user: int) -> list[int]:
        """The last ``history_length`` items of the user's train part (oldest first)."""
        items = self.user_log(user).items
        return [int(i) for i in items[-self.config.history_length :]]


def _parse_floats(path: Path, column: str, values: list[str]) -> np.ndarray:
    try:
        parsed = np.array(values, dtype=np.float64)
    except ValueError:
        parsed = None
    if parsed is not None and bool(np.isfinite(parsed).all()):
        return parsed
    for row, value in enumerate(values):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise DataError(
                f"{path}: line {row + 2}, column {column!r}: expected a finite number, "
                f"got {value!r}"
            )
    raise DataError(f"{path}: column {column!r} holds values that are not finite numbers")


def _natural_key(raw: str) -> tuple[int, int, str]:
    return (0, int(raw), raw) if raw.isdigit() else (1, 0, raw)


def _atomic_path(folder: Path, name: str, suffix: str) -> Path:
    path = folder / f"{name}.{suffix}"
    if not path.is_file():
        present = sorted(p.name for p in folder.glob("*.inter")) + sorted(
            p.name for p in folder.glob("*.item")
        )
        raise DataError(
            f"dataset file not found: {path} (data.name is {name!r}; atomic files in "
            f"{folder}: {present or 'none'})"
        )
    return path


def _fingerprint(paths: Sequence[Path], name: str, config: DataConfig) -> str:
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(name.encode())
    digest.update(config.model_dump_json(exclude={"path", "name"}).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class _RawLog:
    """The ``.inter`` file resolved against the catalogue: one entry per known-item row."""

    raw_users: list[str]
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray


def _optional_floats(
    path: Path, columns: dict[str, list[str]], aliases: Sequence[str], default: np.ndarray, why: str
) -> np.ndarray:
    column = resolve_column(columns, aliases)
    if column is None:
        logger.warning("%s has no %s column: %s", path, "/".join(aliases), why)
        return default
    return _parse_floats(path, column, columns[column])


def _read_log(inter_path: Path, item_path: Path, catalogue: Catalogue) -> _RawLog:
    """Read the ``.inter`` file, dropping (with a warning) rows whose item is unknown."""
    columns = read_atomic_file(inter_path, required=[USER_ID_COLUMN, ITEM_ID_COLUMN])
    raw_users, raw_items = columns[USER_ID_COLUMN], columns[ITEM_ID_COLUMN]
    n_rows = len(raw_users)
    for column in (USER_ID_COLUMN, ITEM_ID_COLUMN):
        empty = next((row for row, value in enumerate(columns[column]) if not value), None)
        if empty is not None:
            raise DataError(f"{inter_path}: line {empty + 2} has an empty {column!r}")
    ratings = _optional_floats(
        inter_path,
        columns,
        RATING_COLUMNS,
        np.full(n_rows, IMPLICIT_RATING),
        f"every interaction gets rating {IMPLICIT_RATING} (implicit feedback)",
    )
    timestamps = _optional_floats(
        inter_path,
        columns,
        TIMESTAMP_COLUMNS,
        np.arange(n_rows, dtype=np.float64),
        "the file order is taken as the chronological order",
    )
    lookup = {item.raw_id: item.item_id for item in catalogue}
    items = np.array([lookup.get(raw, -1) for raw in raw_items], dtype=np.int64)
    known = items >= 0
    if not known.all():
        unknown_ids = {raw for raw, ok in zip(raw_items, known, strict=True) if not ok}
        logger.warning(
            "dropped %d of %d interactions in %s: their %d distinct item ids are not in %s",
            int((~known).sum()),
            n_rows,
            inter_path,
            len(unknown_ids),
            item_path,
        )
    return _RawLog(
        raw_users=[raw for raw, ok in zip(raw_users, known, strict=True) if ok],
        items=items[known],
        ratings=ratings[known],
        timestamps=timestamps[known],
    )


def _dense_users(
    log: _RawLog, min_interactions: int, inter_path: Path
) -> tuple[list[str], np.ndarray]:
    """Raw ids of the users kept (natural order) and each row's dense user id (-1: dropped)."""
    names, inverse, counts = np.unique(
        np.array(log.raw_users, dtype=str), return_inverse=True, return_counts=True
    )
    enough = counts >= min_interactions
    if not enough.all():
        logger.info(
            "dropped %d users with fewer than %d interactions",
            int((~enough).sum()),
            min_interactions,
        )
    kept = sorted((str(name) for name in names[enough]), key=_natural_key)
    if not kept:
        raise DataError(
            f"{inter_path}: no user has at least data.min_user_interactions={min_interactions} "
            "interactions with known items"
        )
    dense_of = {raw: dense for dense, raw in enumerate(kept)}
    dense_of_name = np.array([dense_of.get(str(name), -1) for name in names], dtype=np.int64)
    return kept, dense_of_name[inverse.reshape(-1)]


def _warn_off_scale(path: Path, ratings: np.ndarray) -> None:
    if len(ratings) and (ratings.min() < RATING_SCALE[0] or ratings.max() > RATING_SCALE[1]):
        logger.warning(
            "ratings in %s span [%g, %g]; simulated users rate on [%g, %g]",
            path,
            float(ratings.min()),
            float(ratings.max()),
            *RATING_SCALE,
        )


def load_dataset(config: DataConfig) -> Dataset:
    """Load ``<path>/<name>.inter`` and ``<path>/<name>.item`` (RecBole atomic files).

    ``config.path`` None means MovieLens-100K from the recbole package; ``config.name``
    defaults to the folder's name. Interactions whose item is not in the ``.item`` file are
    dropped (with a warning), as are users with fewer than ``min_user_interactions``.
    A missing rating column gives every interaction the rating 1.0; a missing timestamp
    column makes the file order the chronological order.

    Raises:
        DataError: a folder, file or required column is missing, or a value is malformed.
    """
    folder = Path(config.path) if config.path is not None else movielens_100k_dir()
    if not folder.is_dir():
        raise DataError(f"data.path {folder} is not a folder of RecBole atomic files")
    name = config.name or folder.name
    inter_path = _atomic_path(folder, name, "inter")
    item_path = _atomic_path(folder, name, "item")
    catalogue = read_catalogue(item_path)
    log = _read_log(inter_path, item_path, catalogue)
    user_raw_ids, users = _dense_users(log, config.min_user_interactions, inter_path)
    kept = users >= 0
    _warn_off_scale(inter_path, log.ratings[kept])
    interactions = make_interactions(
        users=users[kept],
        items=log.items[kept],
        ratings=log.ratings[kept],
        timestamps=log.timestamps[kept],
    )
    dataset = Dataset(
        name=name,
        catalogue=catalogue,
        user_raw_ids=user_raw_ids,
        interactions=interactions,
        config=config,
        fingerprint=_fingerprint([inter_path, item_path], name, config),
    )
    logger.info("loaded %r", dataset)
    return dataset
