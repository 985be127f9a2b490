"""Negative items for the reward model: uniform, and matched to the positive's popularity.

Uniform negatives alone make the task easy (a random item is usually obscure), so the model can
win by rewarding popularity. A popularity-matched negative is drawn among the items whose
popularity rank is within ``window`` of the positive's, which takes that shortcut away.
"""

from __future__ import annotations

from collections.abc import Container

import numpy as np

from billp.le.errors import LEError

MAX_TRIES = 64
"""Rejection-sampling attempts before falling back to an exhaustive draw."""


class NegativeSampler:
    """Draws items a user has not interacted with."""

    def __init__(self, popularity: np.ndarray, window: int, rng: np.random.Generator) -> None:
        counts = np.asarray(popularity).reshape(-1)
        if counts.size < 2:
            raise LEError(
                f"negative sampling needs at least 2 items, the catalogue has {counts.size}"
            )
        if window < 1:
            raise LEError(f"popularity_window must be >= 1, got {window}")
        self.n_items = int(counts.size)
        self.window = int(window)
        self.rng = rng
        self.order = np.argsort(-counts, kind="stable")
        self.rank = np.empty(self.n_items, dtype=np.int64)
        self.rank[self.order] = np.arange(self.n_items)

    def _fallback(self, exclude: Container[int], pool: np.ndarray) -> int:
        allowed = [int(i) for i in pool if int(i) not in exclude]
        if not allowed:
            allowed = [i for i in range(self.n_items) if i not in exclude]
        if not allowed:
            raise LEError("no item is left to sample as a negative: the user has seen them all")
        return int(allowed[int(self.rng.integers(len(allowed)))])

    def uniform(self, exclude: Container[int]) -> int:
        """One item drawn uniformly among those not in ``exclude``."""
        for _ in range(MAX_TRIES):
            item = int(self.rng.integers(self.n_items))
            if item not in exclude:
                return item
        return self._fallback(exclude, np.arange(self.n_items))

    def popularity_matched(self, positive: int, exclude: Container[int]) -> int:
        """One item within ``window`` popularity ranks of ``positive``, not in ``exclude``."""
        rank = int(self.rank[positive])
        low, high = max(rank - self.window, 0), min(rank + self.window + 1, self.n_items)
        pool = self.order[low:high]
        for _ in range(MAX_TRIES):
            item = int(pool[int(self.rng.integers(len(pool)))])
            if item != positive and item not in exclude:
                return item
        return self._fallback(exclude, pool[pool != positive])

    def uniform_many(self, count: int, exclude: Container[int]) -> list[int]:
        """``count`` distinct items drawn uniformly outside ``exclude``."""
        chosen: list[int] = []
        taken: set[int] = set()
        for _ in range(count):
            item = self.uniform(_Union(exclude, taken))
            chosen.append(item)
            taken.add(item)
        return chosen


class _Union:
    """``x in _Union(a, b)`` is ``x in a or x in b`` without copying either."""

    def __init__(self, first: Container[int], second: Container[int]) -> None:
        self.first, self.second = first, second

    def __contains__(self, item: object) -> bool:
        return item in self.first or item in self.second
