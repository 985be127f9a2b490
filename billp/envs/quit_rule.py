"""When a simulated user leaves: a repeat, an item too similar to a recent one, or a low rating.

The rule only looks at this episode's recommendations (not the starting history), and only
at the last ``window`` of them. Unlike BiLLP's reference code, the very first recommendation
can end the episode too (on a low reward); the step on which the user quits still returns its
reward, with ``terminated=True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from billp.data.errors import UnknownItemError
from billp.envs.similarity import genre_jaccard

QuitReason = Literal["low_reward", "too_similar", "repeat"]


class QuitDecision(BaseModel):
    """Whether the user quits, why, and which recent item triggered it (if one did)."""

    quit: bool
    reason: QuitReason | None = None
    similar_to: int | None = None


STAY = QuitDecision(quit=False)


class QuitRule:
    """BiLLP's leave mechanism, checked in order: repeat, too similar, low reward."""

    def __init__(
        self,
        genre_sets: Sequence[frozenset[str]],
        window: int,
        reward_threshold: float,
        similarity_threshold: float,
    ) -> None:
        """
        Args:
            genre_sets: per item id, its genres.
            window: W, how many of the latest recommendations the new item is compared with.
            reward_threshold: the user quits after a reward strictly below this.
            similarity_threshold: genre Jaccard at or above which an item is too similar
                (1.0: the same genre set). A repeated item always counts.

        Raises:
            ValueError: an argument is out of range.
        """
        if not genre_sets:
            raise ValueError("QuitRule needs the genre sets of at least one item")
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise ValueError(f"QuitRule window must be an integer >= 0, got {window!r}")
        if not math.isfinite(reward_threshold):
            raise ValueError(f"QuitRule reward_threshold must be finite, got {reward_threshold}")
        if not 0.0 <= similarity_threshold <= 1.0:
            raise ValueError(
                f"QuitRule similarity_threshold must be in [0, 1], got {similarity_threshold}"
            )
        self.genre_sets: tuple[frozenset[str], ...] = tuple(frozenset(g) for g in genre_sets)
        self.window = window
        self.reward_threshold = float(reward_threshold)
        self.similarity_threshold = float(similarity_threshold)

    @property
    def n_items(self) -> int:
        """Number of items the rule knows genres for."""
        return len(self.genre_sets)

    def _check(self, item: int) -> int:
        if not 0 <= item < len(self.genre_sets):
            raise UnknownItemError(
                f"item id {item} is not in the catalogue of {len(self.genre_sets)} items"
            )
        return item

    def decide(self, item: int, reward: float, recent: Sequence[int]) -> QuitDecision:
        """Decide for ``item`` rated ``reward``, given this episode's earlier recommendations.

        ``recent`` is oldest first; only its last ``window`` entries count. The most recent
        matching item is reported in ``similar_to``.
        """
        item = self._check(int(item))
        start = max(len(recent) - self.window, 0)
        window = [self._check(int(r)) for r in recent[start:]][::-1]
        for earlier in window:
            if earlier == item:
                return QuitDecision(quit=True, reason="repeat", similar_to=earlier)
        genres = self.genre_sets[item]
        for earlier in window:
            if genre_jaccard(genres, self.genre_sets[earlier]) >= self.similarity_threshold:
                return QuitDecision(quit=True, reason="too_similar", similar_to=earlier)
        if reward < self.reward_threshold:
            return QuitDecision(quit=True, reason="low_reward")
        return STAY
