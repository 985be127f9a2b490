"""What the LE learns and is calibrated from: the training users, their train logs, and the
held-out items of (train) users."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from billp.config import LETrainConfig
from billp.data.dataset import Dataset
from billp.le.errors import LEError


@dataclass(frozen=True)
class UserLog:
    """A user's train part: item ids and explicit ratings, chronological."""

    items: np.ndarray
    ratings: np.ndarray
    seen: frozenset[int]


def training_users(dataset: Dataset, config: LETrainConfig) -> list[int]:
    """The users whose train logs teach the LE: a seeded subset of the train users, plus every
    test user when ``config.learn_test_users`` (their train part only, as for the matrix
    model; held-out interactions are never read)."""
    users = np.asarray(dataset.split.train_users, dtype=np.int64)
    count = max(1, round(config.train_user_fraction * len(users)))
    chosen = {
        int(u) for u in np.random.default_rng(config.seed).choice(users, count, replace=False)
    }
    if config.learn_test_users:
        chosen |= {int(u) for u in dataset.split.test_users}
    return sorted(chosen)


def user_logs(dataset: Dataset, users: list[int]) -> dict[int, UserLog]:
    """Train logs of ``users`` with at least two items."""
    logs = {}
    for user in users:
        log = dataset.user_log(user)
        if len(log) >= 2:
            items = np.asarray(log.items, dtype=np.int64)
            logs[user] = UserLog(
                items=items,
                ratings=np.asarray(log.ratings, dtype=np.float32),
                seen=frozenset(int(i) for i in items),
            )
    if not logs:
        raise LEError(f"dataset {dataset.name!r}: no training user has two or more train items")
    return logs


class HeldOut(NamedTuple):
    """Held-out items to score, per user."""

    sequences: list[list[int]]
    """The chronological sequence: train part, then held-out part."""
    known: list[np.ndarray]
    """Ratings the LE may read: the train part's; NaN for the held-out part."""
    targets: list[list[int]]
    """Indices in the sequence of the scored held-out items."""
    ratings: list[np.ndarray]
    """Their true ratings."""
    users: list[int]


def heldout_data(dataset: Dataset, users: list[int], items_per_user: int) -> HeldOut:
    """Per user: the earliest ``items_per_user`` held-out items after their train part."""
    heldout = dataset.heldout_interactions
    out = HeldOut([], [], [], [], [])
    for user in users:
        log = dataset.user_log(user)
        mask = heldout.users == user
        held_items, held_ratings = heldout.items[mask], heldout.ratings[mask]
        if len(log.items) == 0 or len(held_items) == 0:
            continue
        count = min(items_per_user, len(held_items))
        out.sequences.append([int(i) for i in np.concatenate([log.items, held_items])])
        out.known.append(
            np.concatenate(
                [np.asarray(log.ratings, dtype=np.float64), np.full(len(held_items), np.nan)]
            )
        )
        out.targets.append(list(range(len(log.items), len(log.items) + count)))
        out.ratings.append(np.asarray(held_ratings[:count], dtype=np.float64))
        out.users.append(user)
    return out
