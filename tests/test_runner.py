"""plan_episodes: which users a run plays, the test-user offset that seeds use, where slow
envs step, and an episode's fallback count."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from billp.agents.billp_traces import BillpStepTrace, ObserveTrace, ReflectionTrace
from billp.agents.loop_trace import LoopTrace
from billp.agents.messages import ActorChoice
from billp.agents.roles import CallTrace
from billp.config import DataConfig, EnvConfig, RunConfig
from billp.envs import World, build_world
from billp.policy import Decision, EpisodeEnd, EpisodeSummary, Policy, Transition
from billp.records import EpisodeRecord, EpisodeTraceRecord, RunWriter, read_steps
from billp.runner import (
    RunContext,
    WaveSequencer,
    derive_seed,
    env_threads,
    plan_episodes,
    plan_waves,
)
from billp.runner.episodes import phase_learns, run_episode
from billp.runner.plan import EpisodeSpec

TRAIN = [3, 5, 8, 13]
TEST = [100, 101, 102, 103, 104, 105, 106]


def test_default_plays_the_first_train_then_the_first_test_users() -> None:
    config = RunConfig(seed=4, train_users=2, test_users=3)
    specs = plan_episodes(config, TRAIN, TEST)
    assert [(s.phase, s.index, s.user_id) for s in specs] == [
        ("train", 0, 3),
        ("train", 1, 5),
        ("test", 0, 100),
        ("test", 1, 101),
        ("test", 2, 102),
    ]
    assert [s.key for s in specs][2:] == ["test-0000", "test-0001", "test-0002"]
    assert specs[2].seed == derive_seed(4, "test", 0, 100)


def test_offset_moves_only_the_test_users_and_keeps_keys_and_seed_rule() -> None:
    base = plan_episodes(RunConfig(seed=4, train_users=2, test_users=3), TRAIN, TEST)
    shifted = plan_episodes(
        RunConfig(seed=4, train_users=2, test_users=3, test_user_offset=3), TRAIN, TEST
    )
    assert shifted[:2] == base[:2]  # train users do not move
    test = [s for s in shifted if s.phase == "test"]
    assert [s.user_id for s in test] == [103, 104, 105]
    assert [(s.key, s.index) for s in test] == [
        ("test-0000", 0),
        ("test-0001", 1),
        ("test-0002", 2),
    ]
    assert test[0].seed == derive_seed(4, "test", 0, 103)
    assert not {s.user_id for s in test} & {s.user_id for s in base if s.phase == "test"}


def test_offset_past_the_split_is_refused_with_both_numbers() -> None:
    config = RunConfig(train_users=0, test_users=3, test_user_offset=5)
    with pytest.raises(ValueError, match=r"test_users=3 from test_user_offset=5 .* only 7 test"):
        plan_episodes(config, TRAIN, TEST)
    assert len(plan_episodes(config.model_copy(update={"test_user_offset": 4}), TRAIN, TEST)) == 3


def test_too_many_train_users_is_refused() -> None:
    with pytest.raises(ValueError, match="only 4 train users"):
        plan_episodes(RunConfig(train_users=5, test_users=0), TRAIN, TEST)


def test_waves_follow_the_plan_per_phase() -> None:
    specs = plan_episodes(RunConfig(train_users=3, test_users=4), TRAIN, TEST)
    waves = plan_waves(specs, 2)
    assert [[s.key for s in w] for w in waves] == [
        ["train-0000", "train-0001"],
        ["train-0002"],
        ["test-0000", "test-0001"],
        ["test-0002", "test-0003"],
    ]


class _Lines:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def write_episode(self, record: EpisodeRecord) -> None:
        self.keys.append(record.key)


def _record(key: str) -> EpisodeRecord:
    return EpisodeRecord(
        key=key, phase="train", index=0, user_id=1, seed=0, items=[], rewards=[], steps=0,
        length=0, total_reward=0.0, terminated=False, truncated=True, quit_reason=None,
        fallbacks=0,
    )  # fmt: skip


def test_sequencer_writes_in_plan_order_whatever_the_finish_order() -> None:
    specs = plan_episodes(RunConfig(train_users=4, test_users=0), TRAIN, TEST)
    out = _Lines()
    ctx = type("Ctx", (), {"writer": out})()
    sequencer = WaveSequencer(ctx, specs, done={"train-0000"})  # type: ignore[arg-type]
    sequencer.finished(_record("train-0002"))
    assert out.keys == []
    sequencer.finished(_record("train-0001"))
    assert out.keys == ["train-0001", "train-0002"]
    sequencer.finished(_record("train-0003"))
    assert out.keys == ["train-0001", "train-0002", "train-0003"]


def test_snapshots_must_fall_on_wave_boundaries() -> None:
    RunConfig(train_users=8, wave_size=4, memory={"snapshot_after": [0, 4, 8]})
    with pytest.raises(ValueError, match="wave boundary"):
        RunConfig(train_users=8, wave_size=4, memory={"snapshot_after": [6]})
    with pytest.raises(ValueError, match="wave boundary"):
        RunConfig(train_users=8, wave_size=4, memory={"snapshot_after": [12]})


def test_slow_envs_get_a_thread_per_episode_in_flight() -> None:
    """The LE batches concurrent steps: asyncio's default pool (cpu_count + 4) would cap them."""
    config = RunConfig(concurrency=32, wave_size=40)
    assert env_threads(config, cast(World, SimpleNamespace(slow_steps=False))) is None
    pool = env_threads(config, cast(World, SimpleNamespace(slow_steps=True)))
    assert pool is not None
    assert pool._max_workers == 32
    pool.shutdown()
    # Small waves: a phase that learns nothing is one wave, with `concurrency` episodes.
    small = env_threads(
        RunConfig(concurrency=32, wave_size=4), cast(World, SimpleNamespace(slow_steps=True))
    )
    assert small is not None and small._max_workers == 32
    small.shutdown()


class _MemorylessForTests:
    name = "memoryless"

    def spawn(self, episode_key: str, seed: int) -> None:
        return None


class _LearnerForTests(_MemorylessForTests):
    def commit(self, writes: object, episode_key: str) -> None:
        return None

    def committed_episodes(self) -> set[str]:
        return set()

    def reload(self) -> None:
        return None


@pytest.mark.parametrize(
    ("policy", "learn_during_test", "train", "test"),
    [
        (_LearnerForTests(), True, True, True),
        (_LearnerForTests(), False, True, False),
        (_MemorylessForTests(), True, False, False),
    ],
)
def test_only_phases_that_commit_memories_play_in_waves(
    policy: object, learn_during_test: bool, train: bool, test: bool
) -> None:
    """Waves exist so that episodes learn from earlier waves; a phase that commits nothing
    plays as one wave (no episode waits for the slowest of its wave)."""
    config = RunConfig(train_users=4, test_users=3, memory={"learn_during_test": learn_during_test})
    ctx = cast(RunContext, SimpleNamespace(policy=policy, config=config))
    specs = plan_episodes(config, TRAIN, TEST)
    assert phase_learns(ctx, [s for s in specs if s.phase == "train"]) is train
    assert phase_learns(ctx, [s for s in specs if s.phase == "test"]) is test


def _fallback(role: str) -> CallTrace:
    return CallTrace(
        role=role, template_hash="t", prompt_hash="p", raw=None, parsed={}, stage="fallback",
        error="no reply", prompt_tokens=0, completion_tokens=0, cached_tokens=0, latency_s=0.0,
        calls=1,
    )  # fmt: skip


class _FallingBackForTests:
    """An episode agent whose Actor and Reflector calls fall back."""

    async def reset(self, info: dict[str, Any]) -> None:
        self.item = -1

    async def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Decision:
        self.item += 1
        trace = BillpStepTrace(
            calls=[_fallback("actor")],
            genre_hints=[],
            shortlist=[self.item],
            shortlist_sources={str(self.item): "plan"},
            choice=ActorChoice(item_id=self.item),
            loop=LoopTrace(),
        )
        return Decision(item_id=self.item, trace=trace)

    async def observe(self, transition: Transition) -> ObserveTrace:
        return ObserveTrace()

    async def end_episode(self, summary: EpisodeSummary) -> EpisodeEnd:
        reflection = ReflectionTrace(outcome="o", reflection="r", calls=[_fallback("reflector")])
        return EpisodeEnd(trace=reflection)


def test_an_episode_counts_the_fallbacks_of_its_steps_and_its_reflection(tmp_path: Path) -> None:
    world = build_world(EnvConfig(name="matrix", max_steps=3), DataConfig())
    user = int(world.dataset.split.test_users[0])
    policy = SimpleNamespace(spawn=lambda key, seed: _FallingBackForTests())
    with RunWriter(tmp_path) as writer:
        ctx = RunContext(RunConfig(), world, cast(Policy, policy), writer, accounting=None)
        spec = EpisodeSpec(key="test-0000", phase="test", index=0, user_id=user, seed=0)
        record = asyncio.run(run_episode(ctx, spec))
    lines = read_steps(tmp_path)
    assert record.steps == len(lines) - 1 and isinstance(lines[-1], EpisodeTraceRecord)
    assert record.fallbacks == record.steps + 1
