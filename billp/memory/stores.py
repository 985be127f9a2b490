"""BiLLP's three memories, typed views over :class:`VectorMemory`.

* reflections (macro-learning): lessons the Reflector wrote, keyed by the user's situation;
* actor memory (micro-learning): per state, which items were good (+1) or bad (-1) to recommend;
* critic memory (micro-learning): per state, the latest TD target ``r + gamma * V(s')``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from billp.memory.embedders import Embedder
from billp.memory.vector_store import VectorMemory
from billp.policy_registry import Retrieval

REFLECTIONS_DIR = "reflections"
ACTOR_DIR = "actor"
CRITIC_DIR = "critic"
ALLOWED_SIGNS = (-1, 1)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
USEFUL_POOL_FACTOR = 3
"""A ``useful`` retrieval of ``k`` reflections ranks the ``k * USEFUL_POOL_FACTOR`` most
similar situations by their episode's total reward."""


class ReflectionEntry(BaseModel):
    """A reflection and the episode it came from."""

    model_config = ConfigDict(extra="forbid")

    text: str
    user_id: int
    episode: str
    length: int = Field(ge=0)
    total_reward: FiniteFloat
    genre_lift: dict[str, FiniteFloat] = Field(
        default_factory=dict,
        description="For each genre of the episode's movies, their mean reward minus the "
        "episode's mean reward: which genres this user rated above and below their session.",
    )
    left_overlap: FiniteFloat | None = Field(
        None,
        description="When the user left after two or more movies: the Jaccard overlap of the "
        "last movie's genres with the one before it.",
    )


class ReflectionMemory:
    """Reflections keyed by the text of the user's situation when the episode started."""

    def __init__(self, directory: Path, embedder: Embedder) -> None:
        self.memory: VectorMemory[ReflectionEntry] = VectorMemory(
            directory, embedder, ReflectionEntry
        )

    def add(self, situation: str, entry: ReflectionEntry) -> None:
        """Store a reflection (several may share a situation)."""
        self.memory.add(situation, entry)

    def retrieve(self, situation: str, k: int, mode: Retrieval) -> list[ReflectionEntry]:
        """``k`` reflections: the most similar situations first (``"nearest"``, BiLLP); the
        ``k`` most recent, newest last (``"recent"``, Reflexion); or, of the
        ``k * USEFUL_POOL_FACTOR`` most similar, the ``k`` whose episodes earned the most
        reward, best first (``"useful"``: lessons ranked by utility as well as similarity)."""
        return [entry for entry, _ in self.retrieve_scored(situation, k, mode)]

    def retrieve_scored(
        self, situation: str, k: int, mode: Retrieval
    ) -> list[tuple[ReflectionEntry, float | None]]:
        """Like :meth:`retrieve`, with each entry's cosine similarity (None for recency)."""
        if mode == "nearest":
            return [(hit.payload, hit.score) for hit in self.memory.search(situation, k)]
        if mode == "recent":
            return [(hit.payload, None) for hit in self.memory.recent(k)]
        if mode == "useful":
            pool = self.memory.search(situation, k * USEFUL_POOL_FACTOR)
            ranked = sorted(pool, key=lambda hit: -hit.payload.total_reward)  # stable on ties
            return [(hit.payload, hit.score) for hit in ranked[:k]]
        raise ValueError(
            f"unknown reflection retrieval mode {mode!r}: 'nearest', 'recent' or 'useful'"
        )

    def __len__(self) -> int:
        return len(self.memory)


class ActorEntry(BaseModel):
    """Per state: item id -> +1 (good to recommend there) or -1 (bad)."""

    model_config = ConfigDict(extra="forbid")

    signs: dict[int, Literal[-1, 1]] = Field(default_factory=dict)


class ActorHints(BaseModel):
    """Items to favour and to avoid in the current state, strongest evidence first."""

    encouraged: list[int]
    discouraged: list[int]
    weights: dict[int, float] = Field(
        default_factory=dict, description="Similarity-weighted sign total of each hinted item."
    )


class ActorMemory:
    """``memory[state][item] = sign``; hints aggregate the signs of similar states."""

    def __init__(self, directory: Path, embedder: Embedder) -> None:
        self.memory: VectorMemory[ActorEntry] = VectorMemory(directory, embedder, ActorEntry)

    def record(self, state: str, item_id: int, sign: int) -> None:
        """Set the sign of ``item_id`` in ``state`` (overwriting an earlier one)."""
        if sign not in ALLOWED_SIGNS:
            raise ValueError(f"actor memory sign for item {item_id} must be +1 or -1, got {sign}")
        entry = self.memory.get(state) or ActorEntry()
        entry.signs[int(item_id)] = 1 if sign > 0 else -1
        self.memory.upsert(state, entry)

    def hints(self, state: str, top_k: int, min_similarity: float) -> ActorHints:
        """Sum each item's signs over the ``top_k`` nearest states with similarity >=
        ``min_similarity``, weighted by similarity; positive totals are encouraged, negative
        discouraged, each ordered by |total| (ties: smaller item id first)."""
        totals: dict[int, float] = {}
        for hit in self.memory.search(state, top_k, min_score=min_similarity):
            for item_id, sign in hit.payload.signs.items():
                totals[item_id] = totals.get(item_id, 0.0) + sign * hit.score
        ranked = sorted(totals.items(), key=lambda pair: (-abs(pair[1]), pair[0]))
        return ActorHints(
            encouraged=[item for item, total in ranked if total > 0],
            discouraged=[item for item, total in ranked if total < 0],
            weights={item: round(total, 6) for item, total in ranked if total != 0},
        )

    def __len__(self) -> int:
        return len(self.memory)


class CriticEntry(BaseModel):
    """The latest TD target of a state and how often the state was recorded."""

    model_config = ConfigDict(extra="forbid")

    value: FiniteFloat
    visits: int = Field(ge=1)


class CriticMemory:
    """State values: the latest TD target ``r + gamma * V(s')`` per exact state text."""

    def __init__(self, directory: Path, embedder: Embedder) -> None:
        self.memory: VectorMemory[CriticEntry] = VectorMemory(directory, embedder, CriticEntry)

    def record(self, state: str, value: float) -> None:
        """Store ``value`` as the state's value (latest wins) and count the visit."""
        if not math.isfinite(value):
            raise ValueError(f"critic value for state {state[:60]!r} must be finite, got {value}")
        previous = self.memory.get(state)
        visits = 1 if previous is None else previous.visits + 1
        self.memory.upsert(state, CriticEntry(value=value, visits=visits))

    def lookup(self, state: str, min_similarity: float) -> tuple[float, float] | None:
        """``(similarity, value)`` of the nearest stored state if similarity >= the threshold."""
        hits = self.memory.search(state, 1, min_score=min_similarity)
        if not hits:
            return None
        return hits[0].score, hits[0].payload.value

    def __len__(self) -> int:
        return len(self.memory)


class AgentMemories:
    """The three memories under one root: ``root/reflections``, ``root/actor``, ``root/critic``.

    Each memory saves atomically on its own; an episode counts as committed only when all three
    saved it (a crash between the three saves leaves it uncommitted).
    """

    def __init__(
        self, root: Path, reflections: ReflectionMemory, actor: ActorMemory, critic: CriticMemory
    ) -> None:
        self.root = Path(root)
        self.reflections = reflections
        self.actor = actor
        self.critic = critic

    @classmethod
    def open(cls, root: Path, embedder: Embedder) -> AgentMemories:
        """Open (or start empty) the three memories under ``root`` with one embedder.

        Raises:
            MemoryStoreError: a memory folder is corrupt or was built with another embedder.
        """
        root = Path(root)
        return cls(
            root,
            ReflectionMemory(root / REFLECTIONS_DIR, embedder),
            ActorMemory(root / ACTOR_DIR, embedder),
            CriticMemory(root / CRITIC_DIR, embedder),
        )

    def _vector_memories(
        self,
    ) -> tuple[VectorMemory[ReflectionEntry], VectorMemory[ActorEntry], VectorMemory[CriticEntry]]:
        return (self.reflections.memory, self.actor.memory, self.critic.memory)

    def save(self, committed_episode: str | None = None) -> None:
        """Save all three memories, recording ``committed_episode`` in each."""
        episodes = () if committed_episode is None else (committed_episode,)
        for memory in self._vector_memories():
            memory.save(episodes)

    @property
    def committed(self) -> set[str]:
        """Episode keys whose writes are in all three saved memories."""
        reflections, actor, critic = self._vector_memories()
        return reflections.committed & actor.committed & critic.committed
