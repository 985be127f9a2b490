"""The agent protocol every policy implements, LLM-driven or not.

A :class:`Policy` is shared by all episodes of a run (it owns memories and clients);
:meth:`Policy.spawn` gives an :class:`EpisodeAgent` that holds one episode's state.
Episodes run concurrently, so nothing per-episode lives on the policy.

An episode's memory writes are buffered and handed back by ``end_episode``; the runner
records them with the episode and then calls :meth:`Policy.commit`. Buffering keeps
memories consistent with ``episodes.jsonl`` (a killed run never holds half an episode)
and matches BiLLP, whose memories change only between batches.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from billp.memory import ReflectionEntry


class Transition(BaseModel):
    """One environment step as the agent observes it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    action: int
    reward: float
    terminated: bool
    truncated: bool
    next_obs: dict[str, np.ndarray]
    info: dict[str, Any]


class ReflectionWrite(BaseModel):
    situation: str
    entry: ReflectionEntry


class ActorWrite(BaseModel):
    state: str
    item_id: int
    sign: int


class CriticWrite(BaseModel):
    state: str
    value: float


class MemoryWrites(BaseModel):
    """Everything one episode adds to the memories."""

    reflections: list[ReflectionWrite] = Field(default_factory=list)
    actor: list[ActorWrite] = Field(default_factory=list)
    critic: list[CriticWrite] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.reflections or self.actor or self.critic)


class EpisodeSummary(BaseModel):
    """How an episode went, handed to ``end_episode``."""

    user_id: int
    items: list[int]
    rewards: list[float]
    terminated: bool
    truncated: bool
    quit_reason: str | None


class EpisodeAgent(Protocol):
    """One episode of a policy."""

    async def reset(self, info: dict[str, Any]) -> None: ...

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> int: ...

    async def observe(self, transition: Transition) -> None: ...

    async def end_episode(self, summary: EpisodeSummary) -> MemoryWrites: ...

    def step_trace(self) -> dict[str, Any]:
        """What the last act/observe did (plans, shortlist, values, LLM calls)."""
        ...

    def episode_trace(self) -> dict[str, Any]:
        """What the episode-level calls did (reflection), after ``end_episode``."""
        ...


class Policy(Protocol):
    """A recommender policy shared across episodes."""

    name: str

    def spawn(self, episode_key: str, seed: int) -> EpisodeAgent: ...

    def commit(self, writes: MemoryWrites, episode_key: str) -> None: ...

    def committed_episodes(self) -> set[str]: ...

    def reload(self) -> None:
        """Re-open persisted memories from disk (the test phase loads what training built)."""
        ...
