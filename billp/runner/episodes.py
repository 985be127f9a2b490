"""Playing a run's episodes: one episode to its records, waves of concurrent episodes with
their memory commits, and a phase wave by wave.

Episodes are asyncio tasks under a concurrency limit, so an LLM server's continuous batching
stays busy (no lock-step batches). Within a wave every episode reads the memories as they were
at the wave's start; the wave's memory writes are committed at its end, in episode order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from billp.config import RunConfig
from billp.envs import World
from billp.llm import Accounting
from billp.policy import Policy, learning
from billp.policy.episode import play_episode
from billp.records import EpisodeRecord, EpisodeTraceRecord, RunWriter, StepRecord, StepsLine
from billp.runner.plan import EpisodeSpec, plan_waves
from billp.runner.progress import RunProgress

log = logging.getLogger(__name__)


class RunContext:
    """Everything a run's episodes share."""

    def __init__(
        self,
        config: RunConfig,
        world: World,
        policy: Policy,
        writer: RunWriter,
        accounting: Accounting | None,
        env_threads: Executor | None = None,
    ) -> None:
        """
        Args:
            writer: where step and episode records are appended.
            env_threads: where slow envs (``world.slow_steps``) step; None: inline.
        """
        self.config = config
        self.world = world
        self.policy = policy
        self.writer = writer
        self.accounting = accounting
        self.env_threads = env_threads


def env_threads(config: RunConfig, world: World) -> ThreadPoolExecutor | None:
    """A thread per episode that can be in flight when ``world`` steps slowly (asyncio's
    default pool has ``cpu_count + 4`` threads, which would cap the LE's step batches); a
    phase that learns nothing runs as one wave, with up to ``concurrency`` episodes."""
    if not world.slow_steps:
        return None
    workers = config.concurrency
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="billp-env")


async def run_episode(ctx: RunContext, spec: EpisodeSpec) -> EpisodeRecord:
    """Play one episode to its end, append its step records, and return its episode record
    (which the caller appends)."""
    # An env over this episode's user only: the starting history of every other user of
    # the phase would be computed and never used.
    env = ctx.world.make_env([spec.user_id])
    agent = ctx.policy.spawn(spec.key, spec.seed)
    played = await play_episode(agent, env, spec.user_id, spec.seed, threads=ctx.env_threads)
    summary = played.summary
    lines: list[StepsLine] = [
        StepRecord(
            episode=spec.key,
            phase=spec.phase,
            user_id=spec.user_id,
            step=number,
            action=step.action,
            reward=round(step.reward, 6),
            terminated=step.terminated,
            truncated=step.truncated,
            quit_reason=step.info.get("quit_reason"),
            similar_to=step.info.get("similar_to"),
            env_step_s=round(step.env_step_s, 6),
            trace=step.trace,
        )
        for number, step in enumerate(played.steps, start=1)
    ]
    if played.episode_trace is not None:
        lines.append(
            EpisodeTraceRecord(episode=spec.key, phase=spec.phase, trace=played.episode_trace)
        )
    fallbacks = sum(1 for line in lines for call in line.calls if call.stage == "fallback")
    # Steps first, then the episode line: an episode line always has its steps on disk.
    ctx.writer.write_steps(lines)
    length = len(summary.items) - (1 if summary.terminated else 0)
    return EpisodeRecord(
        key=spec.key,
        phase=spec.phase,
        index=spec.index,
        user_id=spec.user_id,
        seed=spec.seed,
        items=summary.items,
        rewards=summary.rewards,
        steps=len(summary.items),
        length=length,
        total_reward=round(float(np.sum(summary.rewards[:length])), 6),
        terminated=summary.terminated,
        truncated=summary.truncated,
        quit_reason=summary.quit_reason,
        fallbacks=fallbacks,
        memory_writes=played.writes,
    )


def learns_from(ctx: RunContext, record: EpisodeRecord) -> bool:
    """Whether a learning policy commits ``record``'s memory writes: train episodes always,
    test episodes only with ``memory.learn_during_test`` (memoryless policies commit nothing,
    see :func:`commit_wave`)."""
    return record.phase == "train" or ctx.config.memory.learn_during_test


def phase_learns(ctx: RunContext, specs: list[EpisodeSpec]) -> bool:
    """Whether any episode of ``specs`` (one phase) may commit memory writes."""
    if learning(ctx.policy) is None:
        return False
    return any(spec.phase == "train" for spec in specs) or ctx.config.memory.learn_during_test


class WaveSequencer:
    """Appends a wave's episode lines in plan order as soon as their predecessors are in.

    An episode that finishes before an earlier one of its wave waits (in memory) for it,
    so ``episodes.jsonl`` never depends on which concurrent episode ended first. A kill
    while it waits replays it on resume; no line is lost or written twice.
    """

    def __init__(self, ctx: RunContext, wave: list[EpisodeSpec], done: set[str]) -> None:
        self._ctx = ctx
        self._order = [spec.key for spec in wave]
        self._ready: dict[str, EpisodeRecord] = {}
        self._written = set(done)
        self._next = 0

    def finished(self, record: EpisodeRecord) -> None:
        self._ready[record.key] = record
        while self._next < len(self._order):
            key = self._order[self._next]
            if key in self._written:
                self._next += 1
            elif key in self._ready:
                self._ctx.writer.write_episode(self._ready[key])
                self._written.add(key)
                self._next += 1
            else:
                break


async def run_wave(
    ctx: RunContext,
    wave: list[EpisodeSpec],
    finished: dict[str, EpisodeRecord],
    advance: Callable[[], None],
) -> None:
    """Play the unfinished episodes of ``wave``, then commit the wave's memory writes.

    Every episode reads the memories as they were at the wave's start (nothing is
    committed while the wave plays); commits then apply in episode order.
    """
    todo = [spec for spec in wave if spec.key not in finished]
    sequencer = WaveSequencer(ctx, wave, {spec.key for spec in wave if spec.key in finished})
    limit = asyncio.Semaphore(ctx.config.concurrency)

    async def one(spec: EpisodeSpec) -> None:
        async with limit:
            record = await run_episode(ctx, spec)
            finished[spec.key] = record
            sequencer.finished(record)
            advance()

    if ctx.config.scheduling == "lockstep":
        size = ctx.config.concurrency
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    else:
        batches = [todo]
    for batch in batches:
        tasks = [asyncio.create_task(one(spec), name=spec.key) for spec in batch]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    commit_wave(ctx, wave, finished, played={spec.key for spec in todo})


def commit_wave(
    ctx: RunContext,
    wave: list[EpisodeSpec],
    finished: dict[str, EpisodeRecord],
    played: set[str],
) -> None:
    """Commit the memory writes of a finished wave, in episode order, skipping episodes the
    memories already hold (a resume completes a commit that a kill interrupted). A memoryless
    policy commits nothing."""
    policy = learning(ctx.policy)
    if policy is None:
        return
    committed = policy.committed_episodes()
    for spec in wave:
        record = finished[spec.key]
        if learns_from(ctx, record) and record.key not in committed:
            if record.key not in played:
                log.info("committing memory writes of %s (finished before the resume)", spec.key)
            policy.commit(record.memory_writes, record.key)


def snapshot_memories(memory_root: Path, run_dir: Path, train_done: int) -> None:
    """Copy the committed memories to ``run_dir/memory_snapshots/after-N`` (once)."""
    target = run_dir / "memory_snapshots" / f"after-{train_done:04d}"
    if target.exists() or not memory_root.is_dir():
        return
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(memory_root, partial)
    os.replace(partial, target)
    log.info("memory snapshot after %d train episodes: %s", train_done, target)


async def run_phase(
    ctx: RunContext,
    specs: list[EpisodeSpec],
    finished: dict[str, EpisodeRecord],
    progress: RunProgress | None,
    label: str,
    after_wave: Callable[[int], None] | None = None,
) -> None:
    """Play the unfinished episodes of ``specs`` (one phase) wave by wave.

    Waves exist for learning: a phase that commits nothing (a memoryless policy, or the test
    phase without ``memory.learn_during_test``) is one wave, so that no episode waits for the
    slowest of its wave while the LLM server idles; every episode reads the same memories
    either way, and the episode lines keep the plan's order.

    ``scheduling = "async"``: within a wave, at most ``concurrency`` episodes in flight, a
    new one starting as soon as another ends. ``"lockstep"``: BiLLP's scheme, batches of
    ``concurrency`` episodes where the next batch starts only when the slowest episode of
    the current one has ended (kept as a baseline for benchmarks). ``after_wave`` gets the
    number of the phase's episodes finished after each wave.
    """
    todo = [spec for spec in specs if spec.key not in finished]
    task_id = progress.add_task(label, total=len(todo)) if progress and todo else None

    def advance() -> None:
        if progress is not None and task_id is not None:
            progress.advance(task_id)

    waves = plan_waves(specs, ctx.config.wave_size) if phase_learns(ctx, specs) else [specs]
    for wave in waves:
        await run_wave(ctx, wave, finished, advance)
        if after_wave is not None:
            after_wave(sum(1 for spec in specs if spec.key in finished))
