"""The agent protocol every policy implements, LLM-driven or not.

A :class:`Policy` is shared by all episodes of a run (it owns memories and clients);
:meth:`Policy.spawn` gives an :class:`EpisodeAgent` that holds one episode's state.
Episodes run concurrently, so nothing per-episode lives on the policy.

The agent returns what it did: ``act`` a :class:`~billp.policy.trace.Decision` (the item
and a typed act trace), ``observe`` a typed observe trace (the values it learnt from, the
LLM calls it made), ``end_episode`` an :class:`~billp.policy.trace.EpisodeEnd` (memory
writes and an episode trace). The episode loop records them; it never reads agent state.

A :class:`LearningPolicy` also keeps memories: an episode's writes are buffered and handed
back by ``end_episode``; the runner records them with the episode and then calls
:meth:`LearningPolicy.commit`. Buffering keeps memories consistent with ``episodes.jsonl``
(a killed run never holds half an episode) and matches BiLLP, whose memories change only
between batches. A memoryless policy (baselines, RL recommenders) has nothing to commit or
reload, and the runner does neither for it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from billp.policy.trace import Decision, EpisodeEnd, TraceRecord
from billp.policy.writes import MemoryWrites

__all__ = [
    "EpisodeAgent",
    "EpisodeSummary",
    "LearningPolicy",
    "Policy",
    "Transition",
    "learning",
]


class Transition(BaseModel):
    """One environment step as the agent observes it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    action: int
    reward: float
    terminated: bool
    truncated: bool
    next_obs: dict[str, np.ndarray]
    info: dict[str, Any]


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

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> Decision:
        """The item to recommend and what the agent did to choose it (plans, shortlist,
        values, LLM calls)."""
        ...

    async def observe(self, transition: Transition) -> TraceRecord:
        """Take in the step's outcome; what that did (values, TD target, LLM calls)."""
        ...

    async def end_episode(self, summary: EpisodeSummary) -> EpisodeEnd: ...


class Policy(Protocol):
    """A recommender policy shared across episodes."""

    name: str

    def spawn(self, episode_key: str, seed: int) -> EpisodeAgent: ...


@runtime_checkable
class LearningPolicy(Policy, Protocol):
    """A policy with memories that episodes write to (BiLLP and its ablations)."""

    def commit(self, writes: MemoryWrites, episode_key: str) -> None: ...

    def committed_episodes(self) -> set[str]: ...

    def reload(self) -> None:
        """Re-open persisted memories from disk (the test phase loads what training built)."""
        ...


def learning(policy: Policy) -> LearningPolicy | None:
    """``policy`` as a learning policy, or None when it has no memories to commit."""
    return policy if isinstance(policy, LearningPolicy) else None
