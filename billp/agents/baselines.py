"""Non-LLM reference policies behind the same protocol as BiLLP.

- ``random``: a uniformly random unseen item.
- ``popularity``: the most popular unseen item of the training log.
- ``greedy``: the myopic argmax of the simulator's own reward model (an oracle that
  knows the user model; an upper bound on R_each, not on trajectory length).
- ``greedy-diverse``: the same argmax restricted to items the quit rule would accept
  on similarity grounds (another oracle: it knows the quit rule too).

Every policy skips items the user has seen or been recommended in this episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from billp.agents.protocol import EpisodeSummary, MemoryWrites, Transition
from billp.data import Catalogue
from billp.envs import QuitRule, UserModel


class _BaselineEpisode:
    """Shared per-episode bookkeeping: history and recommendations so far."""

    def __init__(self, policy: _BaselinePolicy, seed: int) -> None:
        self.policy = policy
        self.rng = np.random.default_rng(seed)
        self.user_id = -1
        self.history: list[int] = []
        self.recommended: list[int] = []
        self._trace: dict[str, Any] = {}

    async def reset(self, info: dict[str, Any]) -> None:
        self.user_id = int(info["user_id"])
        self.history = [int(i) for i in info["history"]]

    def _unseen(self) -> np.ndarray:
        mask = np.ones(len(self.policy.catalogue), dtype=bool)
        mask[self.history] = False
        mask[self.recommended] = False
        if not mask.any():
            raise RuntimeError("no unseen catalogue item is left to recommend")
        return mask

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> int:
        item = self.policy.choose(self, self._unseen())
        self._trace = {"choice": {"item_id": item}}
        return item

    async def observe(self, transition: Transition) -> None:
        self.recommended.append(transition.action)

    async def end_episode(self, summary: EpisodeSummary) -> MemoryWrites:
        return MemoryWrites()

    def step_trace(self) -> dict[str, Any]:
        return self._trace

    def episode_trace(self) -> dict[str, Any]:
        return {}


class _BaselinePolicy:
    """Base of the memoryless policies."""

    name = "baseline"

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> int:
        raise NotImplementedError

    def spawn(self, episode_key: str, seed: int) -> _BaselineEpisode:
        return _BaselineEpisode(self, seed)

    def commit(self, writes: MemoryWrites, episode_key: str) -> None:
        return None

    def committed_episodes(self) -> set[str]:
        return set()

    def reload(self) -> None:
        return None


class RandomPolicy(_BaselinePolicy):
    name = "random"

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> int:
        return int(episode.rng.choice(np.flatnonzero(unseen)))


class PopularityPolicy(_BaselinePolicy):
    name = "popularity"

    def __init__(self, catalogue: Catalogue, popularity: np.ndarray) -> None:
        super().__init__(catalogue)
        self._order = np.argsort(-popularity, kind="stable")

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> int:
        return int(self._order[unseen[self._order]][0])


class GreedyPolicy(_BaselinePolicy):
    name = "greedy"

    def __init__(self, catalogue: Catalogue, user_model: UserModel) -> None:
        super().__init__(catalogue)
        self.user_model = user_model
        self._all = np.arange(len(catalogue))

    def _scores(self, episode: _BaselineEpisode) -> np.ndarray:
        return np.asarray(
            self.user_model.rewards(
                episode.user_id, episode.history + episode.recommended, self._all
            ),
            dtype=np.float64,
        )

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> int:
        scores = np.where(unseen, self._scores(episode), -np.inf)
        return int(np.argmax(scores))


class GreedyDiversePolicy(GreedyPolicy):
    name = "greedy-diverse"

    def __init__(self, catalogue: Catalogue, user_model: UserModel, quit_rule: QuitRule) -> None:
        super().__init__(catalogue, user_model)
        self.quit_rule = quit_rule

    def _acceptable(self, recent: Sequence[int], unseen: np.ndarray) -> np.ndarray:
        ok = unseen.copy()
        for item in np.flatnonzero(unseen):
            decision = self.quit_rule.decide(int(item), float("inf"), recent)
            ok[item] = not decision.quit
        return ok

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> int:
        ok = self._acceptable(episode.recommended, unseen)
        pool = ok if ok.any() else unseen
        scores = np.where(pool, self._scores(episode), -np.inf)
        return int(np.argmax(scores))
