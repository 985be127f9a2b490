"""LE models as the RL code sees them: the :class:`LEFeatureModel` interface, the adapter over
the project's LE, and a deterministic fake.

:class:`LEFeatureModel` is the small interface this package needs from an LE. The real LE
(``billp.le.user_model.LEUserModel``) is adapted by :class:`LEAdapter`; :class:`RandomVectorLE` is a
deterministic stand-in for tests and pipeline checks that also implements the simulator's
``UserModel``/``StateModel`` protocols, so it can drive an LE-style env.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from billp.data.dataset import RATING_MAX, RATING_MIN

FAKE_RECENCY_DECAY = 0.7
"""The fake LE's state weighs the history item ``k`` steps back by ``decay**k``."""
FAKE_REWARD_SHARPNESS = 4.0
"""The fake LE's reward is ``1 + 4 * sigmoid(sharpness * cosine(state, item))``."""


@runtime_checkable
class LEFeatureModel(Protocol):
    """What the RL code needs from an LE (rewards on 1..5, unit-length states)."""

    name: str
    state_dim: int

    @property
    def identity(self) -> str:
        """Changes whenever the model's outputs could change (part of cache keys)."""
        ...

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        """float32 ``[state_dim]`` state after ``history``."""
        ...

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Rewards of ``items`` after ``history``."""
        ...

    def score_with_states(
        self, user: int, history: Sequence[int], items: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rewards ``[n]`` of ``items`` for ``user`` after ``history`` and the states ``[n, d]``
        after ``history + [item]`` for each."""
        ...

    def nearest(self, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
        """Up to ``k`` items not in ``exclude`` nearest to ``state``, nearest first."""
        ...


def _nearest(vectors: np.ndarray, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
    scores = vectors @ np.asarray(state, dtype=np.float32)
    allowed = np.ones(len(vectors), dtype=bool)
    allowed[np.asarray(exclude, dtype=np.int64)] = False
    candidates = np.flatnonzero(allowed)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]].astype(np.int64)


class RandomVectorLE:
    """A deterministic LE stand-in made of random unit item vectors (``features.source =
    "fake"``, for tests and offline demos of the RL pipeline): the state is the normalised,
    recency-weighted sum of the history's vectors; the reward grows with the cosine between
    the state and the item. It implements ``UserModel`` and ``StateModel`` too."""

    def __init__(self, n_items: int, dim: int, seed: int = 0) -> None:
        if n_items < 1 or dim < 2:
            raise ValueError(
                f"RandomVectorLE needs n_items >= 1 and dim >= 2, got {n_items}, {dim}"
            )
        self.name = "fake-le"
        self.n_items = n_items
        self.state_dim = dim
        self.seed = seed
        vectors = np.random.default_rng(seed).normal(size=(n_items, dim)).astype(np.float32)
        self.item_vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    @property
    def identity(self) -> str:
        return f"fake:{self.n_items}:{self.state_dim}:{self.seed}"

    def _check(self, items: Sequence[int], what: str) -> np.ndarray:
        array = np.asarray(items, dtype=np.int64).reshape(-1)
        bad = array[(array < 0) | (array >= self.n_items)]
        if bad.size:
            raise ValueError(f"{what}: item id {int(bad[0])} is not in 0..{self.n_items - 1}")
        return array

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        items = self._check(history, "history")
        if items.size == 0:
            raise ValueError("the fake LE needs a non-empty history")
        weights = FAKE_RECENCY_DECAY ** np.arange(len(items) - 1, -1, -1, dtype=np.float32)
        summed = (weights[:, None] * self.item_vectors[items]).sum(axis=0)
        return (summed / max(float(np.linalg.norm(summed)), 1e-8)).astype(np.float32)

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        candidates = self._check(items, "candidate items")
        cosine = self.item_vectors[candidates] @ self.state(user, history)
        span = RATING_MAX - RATING_MIN
        return (RATING_MIN + span / (1.0 + np.exp(-FAKE_REWARD_SHARPNESS * cosine))).astype(
            np.float32
        )

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        return float(self.rewards(user, history, [item])[0])

    def score_with_states(
        self, user: int, history: Sequence[int], items: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        rewards = self.rewards(user, history, items)
        states = (
            np.stack([self.state(user, [*history, int(i)]) for i in items])
            if len(items)
            else (np.zeros((0, self.state_dim), dtype=np.float32))
        )
        return rewards, states

    def nearest(self, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
        return _nearest(self.item_vectors, state, k, exclude)


class LEAdapter:
    """:class:`LEFeatureModel` over the project's LE (``billp.le.user_model.LEUserModel``).

    ``score_with_states`` uses the LE's ``score``, which returns the state after each candidate
    with its reward (one forward pass per call); an LE without it falls back to one ``state``
    call per item.
    """

    name = "le"

    def __init__(self, le: Any) -> None:
        self.le = le
        self.state_dim = int(le.state_dim)
        self.item_vectors = np.asarray(le.item_vectors, dtype=np.float32)
        manifest = getattr(getattr(le, "loaded", None), "manifest", None)
        described = manifest.model_dump_json() if hasattr(manifest, "model_dump_json") else "le"
        self._identity = "le:" + hashlib.sha256(described.encode()).hexdigest()[:16]

    @property
    def identity(self) -> str:
        return self._identity

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        return np.asarray(self.le.state(user, list(history)), dtype=np.float32)

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        return np.asarray(self.le.rewards(user, list(history), list(items)), dtype=np.float32)

    def score_with_states(
        self, user: int, history: Sequence[int], items: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self.le, "score"):
            rewards = self.rewards(user, history, items)
            states = [self.state(user, [*history, int(i)]) for i in items]
            return rewards, np.stack(states).astype(np.float32)
        scored = self.le.score(user, list(history), list(items))
        return scored.rewards.astype(np.float32), scored.states.astype(np.float32)

    def nearest(self, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
        return _nearest(self.item_vectors, state, k, exclude)
