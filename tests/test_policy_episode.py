"""The one episode loop: steps, summary, Gymnasium episode statistics, memory writes."""

from __future__ import annotations

import asyncio

import pytest

from billp.agents.baselines import PopularityPolicy
from billp.config import DataConfig, EnvConfig
from billp.envs import build_world
from billp.policy.episode import play_episode
from billp.policy.memoryless import RankedTrace


def test_a_baseline_episode_ends_with_its_statistics() -> None:
    env_config = EnvConfig.model_validate({"name": "matrix", "max_steps": 6})
    world = build_world(env_config, DataConfig.model_validate({}))
    policy = PopularityPolicy(world.dataset.catalogue, world.dataset.item_popularity)
    user = int(world.dataset.split.test_users[0])
    played = asyncio.run(
        play_episode(policy.spawn("test-0000", 3), world.make_env([user]), user, 3)
    )
    summary = played.summary
    assert 1 <= len(played.steps) <= 6
    assert summary.items == [s.action for s in played.steps]
    assert summary.rewards == [round(s.reward, 6) for s in played.steps]
    last = played.steps[-1]
    assert last.terminated or last.truncated
    assert not any(s.terminated or s.truncated for s in played.steps[:-1])
    assert summary.quit_reason == (last.info.get("quit_reason") if last.terminated else None)
    assert played.statistics["l"] == len(played.steps)
    assert played.statistics["r"] == pytest.approx(sum(s.reward for s in played.steps), abs=1e-4)
    assert played.writes.is_empty() and played.episode_trace is None
    assert all(s.env_step_s >= 0.0 for s in played.steps)
    assert all(isinstance(s.trace, RankedTrace) and s.trace.shortlist for s in played.steps)
