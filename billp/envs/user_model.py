"""The world's reward function: how much a simulated user likes an item.

Rewards are ratings on the 1..5 scale. The matrix model ignores the history (a classic
simulator); the LLM environment model (billp.le) implements the same protocol and is also a
:class:`StateModel`, whose state vector the LE env adds to its observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from billp.data.dataset import RATING_MAX, RATING_MIN
from billp.data.errors import UnknownItemError, UnknownUserError


@runtime_checkable
class UserModel(Protocol):
    """Scores recommendations for a user with a given history, on the 1..5 scale (clipped)."""

    name: str

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        """Reward of recommending ``item`` to ``user`` after ``history`` (oldest first)."""
        ...

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Rewards of several candidate items, in the order given."""
        ...


@runtime_checkable
class StateModel(Protocol):
    """Gives a user's state vector after a history (unit length, so each entry is in [-1, 1])."""

    @property
    def state_dim(self) -> int:
        """Length of the state vector."""
        ...

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        """float32 ``[state_dim]`` state of ``user`` after ``history`` (oldest first)."""
        ...


class MatrixUserModel:
    """A :class:`UserModel` read from a predicted-rating matrix ``[n_users, n_items]``."""

    def __init__(self, matrix: np.ndarray, name: str = "matrix") -> None:
        """Keep a float32, read-only copy of ``matrix`` clipped to [1, 5].

        Raises:
            ValueError: the matrix is not 2-D, is empty, or holds non-finite values.
        """
        array = np.asarray(matrix)
        if array.ndim != 2 or array.size == 0:
            raise ValueError(
                f"rating matrix must be a non-empty 2-D array [n_users, n_items], "
                f"got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError("rating matrix holds NaN or infinite values")
        clipped = np.clip(array.astype(np.float32), RATING_MIN, RATING_MAX)
        clipped.setflags(write=False)
        self.matrix: np.ndarray = clipped
        self.name = name

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    def _user(self, user: int) -> int:
        index = int(user)
        if not 0 <= index < self.n_users:
            raise UnknownUserError(
                f"user id {index} is not in the rating matrix of {self.n_users} users"
            )
        return index

    def _items(self, items: Sequence[int]) -> np.ndarray:
        array = np.asarray(items, dtype=np.int64).reshape(-1)
        bad = array[(array < 0) | (array >= self.n_items)]
        if bad.size:
            raise UnknownItemError(
                f"item id {int(bad[0])} is not in the catalogue of {self.n_items} items"
            )
        return array

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        """The predicted rating of ``item`` for ``user`` (the history is not used)."""
        return float(self.matrix[self._user(user), self._items([item])[0]])

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Predicted ratings (float32) of ``items`` for ``user``."""
        return self.matrix[self._user(user), self._items(items)].copy()
