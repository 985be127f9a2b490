"""The episode half of a policy without memories (baselines, RL recommenders)."""

from __future__ import annotations

from typing import Any

import numpy as np

from billp.policy.protocol import EpisodeSummary, MemoryWrites, Transition


class MemorylessEpisode:
    """An episode of a policy without memories: it tracks the user's history and this
    episode's recommendations; subclasses implement ``act``."""

    def __init__(self) -> None:
        self.user_id = -1
        self.history: list[int] = []
        self.recommended: list[int] = []
        self._trace: dict[str, Any] = {}

    async def reset(self, info: dict[str, Any]) -> None:
        self.user_id = int(info["user_id"])
        self.history = [int(i) for i in info["history"]]
        self.recommended = []

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> int:
        raise NotImplementedError

    async def observe(self, transition: Transition) -> None:
        self.recommended.append(int(transition.action))

    async def end_episode(self, summary: EpisodeSummary) -> MemoryWrites:
        return MemoryWrites()

    def step_trace(self) -> dict[str, Any]:
        return self._trace

    def episode_trace(self) -> dict[str, Any]:
        return {}
