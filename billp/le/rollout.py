"""Synchronous rollouts of the baseline policies, for the fidelity report's policy ranking.

Greedy-on-LE over a big catalogue would score every item at every step; instead it scores a
pool of ``pool_size`` unseen items: those whose item-token embedding is closest to the LE state
(the retrieval the state model is trained for), ranked by raw psi (an argmax of psi is an argmax
of the calibrated reward, without the ties of the calibration's flat ends).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from billp.agents.protocol import Policy, Transition
from billp.envs.world import World
from billp.le.user_model import LEUserModel

NOT_IN_POOL = -np.inf


class PooledLEScores:
    """A ``UserModel``-shaped scorer for greedy-on-LE: psi for a pool, -inf elsewhere."""

    name = "le-pooled"

    def __init__(self, le: LEUserModel, pool_size: int) -> None:
        self.le = le
        self.pool_size = pool_size

    def pool(self, history: Sequence[int]) -> np.ndarray:
        """The unseen items nearest to the LE state of ``history`` (at most ``pool_size``)."""
        state = self.le.state(0, history)
        similarity = self.le.item_vectors @ state
        similarity[np.asarray(list(history), dtype=np.int64)] = -np.inf
        size = min(self.pool_size, int(np.isfinite(similarity).sum()))
        if size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.argpartition(-similarity, size - 1)[:size].astype(np.int64)

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Raw psi of the pool's items among ``items``; -inf for every other item."""
        pool = self.pool(history)
        scores = np.full(len(self.le.item_vectors), NOT_IN_POOL, dtype=np.float64)
        scores[pool] = self.le.raw_scores(history, pool.tolist())
        return scores[np.asarray(items, dtype=np.int64)]

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        return float(self.rewards(user, history, [item])[0])


class EpisodeResult(BaseModel):
    """One rollout."""

    user_id: int
    items: list[int]
    rewards: list[float]
    quit_reason: str | None

    @property
    def total(self) -> float:
        return float(sum(self.rewards))


async def _episode(policy: Policy, world: World, user: int, seed: int) -> EpisodeResult:
    env = world.make_env([user])
    obs, info = env.reset(seed=seed, options={"user_id": user})
    agent = policy.spawn(f"{policy.name}-{user}", seed)
    await agent.reset(info)
    items: list[int] = []
    rewards: list[float] = []
    quit_reason: str | None = None
    for _ in range(world.config.max_steps):
        action = await agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        items.append(int(action))
        rewards.append(float(reward))
        await agent.observe(
            Transition(
                action=int(action),
                reward=float(reward),
                terminated=terminated,
                truncated=truncated,
                next_obs=obs,
                info=info,
            )
        )
        if terminated or truncated:
            quit_reason = info.get("quit_reason")
            break
    env.close()
    return EpisodeResult(user_id=user, items=items, rewards=rewards, quit_reason=quit_reason)


def rollout(policy: Any, world: World, users: Sequence[int], seed: int) -> list[EpisodeResult]:
    """One episode per user, in order, each seeded from ``seed`` and the user id."""

    async def run_all() -> list[EpisodeResult]:
        return [await _episode(policy, world, int(u), seed + int(u)) for u in users]

    return asyncio.run(run_all())
