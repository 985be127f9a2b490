"""The episode half of a policy without memories (baselines, RL recommenders)."""

from __future__ import annotations

from typing import Any

import numpy as np

from billp.policy.protocol import EpisodeSummary, Transition
from billp.policy.trace import Decision, EpisodeEnd, TraceRecord


class ScoredChoice(TraceRecord):
    """The recommended item and the score the policy chose it by (the one it has)."""

    item_id: int
    popularity: int | None = None
    predicted_reward: float | None = None
    score: float | None = None


class RankedTrace(TraceRecord):
    """A memoryless step: the choice and the next best candidates, best first; a policy
    that filters by the quit rule (``greedy-diverse``) adds how many unseen items the rule
    ruled out and whether none was left (the choice then ignores the rule)."""

    choice: ScoredChoice
    shortlist: list[int] | None = None
    excluded_by_quit_rule: int | None = None
    no_safe_item: bool | None = None


class MemorylessEpisode:
    """An episode of a policy without memories: it tracks the user's history and this
    episode's recommendations; subclasses implement ``act``."""

    def __init__(self) -> None:
        self.user_id = -1
        self.history: list[int] = []
        self.recommended: list[int] = []

    async def reset(self, info: dict[str, Any]) -> None:
        self.user_id = int(info["user_id"])
        self.history = [int(i) for i in info["history"]]
        self.recommended = []

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> Decision:
        raise NotImplementedError

    async def observe(self, transition: Transition) -> TraceRecord:
        self.recommended.append(int(transition.action))
        return TraceRecord()

    async def end_episode(self, summary: EpisodeSummary) -> EpisodeEnd:
        return EpisodeEnd()


def decide(trace: RankedTrace) -> Decision:
    """The decision whose item is ``trace``'s choice."""
    return Decision(item_id=trace.choice.item_id, trace=trace)
