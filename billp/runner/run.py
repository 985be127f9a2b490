"""Run episodes of a policy against a simulated user and write the run directory.

A train phase on train users builds the memories; the test phase reloads them from disk and
plays the test users, as in BiLLP.

Durability: when an episode ends, its record (with its buffered memory writes) is
appended to ``episodes.jsonl`` and fsynced first; then the memories are updated and
saved atomically, marking the episode as committed. ``--resume`` therefore finds every
finished episode, re-applies the writes of any episode the memories missed, drops the
step lines of unfinished episodes, and plays only what is left: no episode is lost or
repeated.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from billp import records
from billp.agents import PromptLibrary
from billp.common.atomic_io import write_json_atomic
from billp.config import RunConfig
from billp.data import Dataset, load_dataset
from billp.envs import World, build_world_on, check_world
from billp.llm import Accounting, make_llm_client
from billp.policy import learning
from billp.policy_factory import build_policy
from billp.preflight import check_inputs
from billp.records import RunWriter
from billp.records.files import locked_run_dir
from billp.runner.episodes import RunContext, env_threads, run_phase, snapshot_memories
from billp.runner.plan import EpisodeSpec, plan_episodes, run_name
from billp.runner.progress import progress
from billp.summary.episodes import summarize_episodes
from billp.summary.loop_stats import loop_stats_by_phase
from billp.summary.phases import PhaseClock
from billp.summary.throughput import throughput, tokens_per_step


class RunResult(BaseModel):
    run_dir: Path
    summary: dict[str, Any]


def server_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the server did during this run (its counters are cumulative since it started)."""
    delta = {
        name.removeprefix("vllm:"): after.get(name, 0.0) - before.get(name, 0.0) for name in after
    }
    queries = delta.get("prefix_cache_queries_total", 0.0)
    hits = delta.get("prefix_cache_hits_total", 0.0)
    return {
        "prompt_tokens": delta.get("prompt_tokens_total", 0.0),
        "generation_tokens": delta.get("generation_tokens_total", 0.0),
        "prefix_cache_queries": queries,
        "prefix_cache_hits": hits,
        "prefix_cache_hit_rate": round(hits / queries, 4) if queries else 0.0,
    }


def prepare_run_dir(config: RunConfig) -> Path:
    """Create a fresh run directory (exclusively: never one that exists) with its config."""
    return records.create(config, run_name(config))


def _copy_memory_init(source: Path, memory_root: Path) -> None:
    """Copy ``source`` to ``memory_root`` so that a kill never leaves half a copy there."""
    if memory_root.exists():
        raise FileExistsError(f"memory folder {memory_root} already exists; not overwriting it")
    staging = memory_root.with_name(f".{memory_root.name}.init-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    os.replace(staging, memory_root)


class _Prepared(BaseModel):
    """What is checked and built before a run directory exists."""

    model_config = {"arbitrary_types_allowed": True}

    dataset: Dataset
    prompts: PromptLibrary
    specs: list[EpisodeSpec]
    clock: PhaseClock


def _prepare(config: RunConfig, fresh: bool = True) -> _Prepared:
    """Load and check templates, model paths, memory.init (``fresh`` runs), the data and what
    the world will load, and plan the episodes: fails fast on bad input, before a run
    directory or server exists. The world itself loads later, while the server starts."""
    clock = PhaseClock()
    with clock.phase("prepare"):
        prompts = PromptLibrary(config.prompts_dir)
        check_inputs(config, prompts, memory_init=fresh)
        dataset = load_dataset(config.data)
        check_world(config.env, dataset)
        split = dataset.split
        specs = plan_episodes(config, split.train_users, split.test_users)
    return _Prepared(dataset=dataset, prompts=prompts, specs=specs, clock=clock)


def _load_world(config: RunConfig, prepared: _Prepared) -> World:
    """Build the world (seconds for the LE) and time it as ``world_load``."""
    with prepared.clock.phase("world_load"):
        return build_world_on(config.env, prepared.dataset)


def _settle(task: asyncio.Task[World]) -> None:
    """Leave no error of a world load that the run did not wait for unretrieved."""
    if not task.done():
        task.cancel()  # the loading thread runs on; asyncio.run waits for it
    elif not task.cancelled():
        task.exception()


async def _execute(
    config: RunConfig, prepared: _Prepared, run_dir: Path, resume: bool
) -> RunResult:
    started = time.monotonic()
    prompts, specs = prepared.prompts, prepared.specs
    name = run_dir.name
    memory_root = config.memory.dir / name
    if resume and (run_dir / records.MANIFEST_FILE).is_file():
        memory_root = records.manifest_memory_dir(run_dir)
    else:
        if config.memory.init is not None and config.agent.is_llm:
            if not (resume and memory_root.exists()):  # a resume may find the copy done
                _copy_memory_init(config.memory.init, memory_root)  # checked by _prepare
        records.write_manifest(run_dir, records.build_manifest(config, name, prompts, memory_root))

    finished = records.recover(run_dir, {spec.key for spec in specs}) if resume else []
    accounting = Accounting() if config.agent.is_llm else None
    clock = prepared.clock
    # The world loads in a thread while the server starts (both take tens of seconds).
    world_task = asyncio.create_task(asyncio.to_thread(_load_world, config, prepared))
    connecting = time.monotonic()
    try:
        async with make_llm_client(config, run_dir) as connection:
            clock.add("server_start", time.monotonic() - connecting)
            world = await world_task
            metrics_before = connection.server_metrics() if config.agent.is_llm else None
            policy = build_policy(
                config,
                world,
                client=connection.client,
                role_clients=connection.role_clients,
                accounting=accounting,
                prompts=prompts,
                memory_root=memory_root,
            )
            writer = RunWriter(run_dir)
            threads = env_threads(config, world)
            ctx = RunContext(config, world, policy, writer, accounting, threads)
            # Waves finished before an interruption replay nothing but still commit (in their
            # turn, so snapshots and the test phase see what they would have); a wave in
            # progress commits at its end, as it would have.
            done = {record.key: record for record in finished}
            train = [s for s in specs if s.phase == "train"]
            test = [s for s in specs if s.phase == "test"]
            snapshots = set(config.memory.snapshot_after)

            def after_train_wave(count: int) -> None:
                if count in snapshots and config.agent.is_llm:
                    snapshot_memories(memory_root, run_dir, count)

            if 0 in snapshots and config.agent.is_llm:
                snapshot_memories(memory_root, run_dir, 0)
            try:
                async with progress(config.progress) as bars:
                    with clock.phase("train"):
                        await run_phase(ctx, train, done, bars, "train episodes", after_train_wave)
                    if (learner := learning(policy)) is not None:
                        learner.reload()
                    with clock.phase("test"):
                        await run_phase(ctx, test, done, bars, "test episodes")
            finally:
                writer.close()
                if threads is not None:
                    threads.shutdown(wait=True, cancel_futures=True)
            metrics_after = connection.server_metrics() if metrics_before is not None else None
    finally:
        _settle(world_task)
    episodes = records.read_episodes(run_dir)
    recovered = {r.key for r in finished}
    played = [r for r in episodes if r.key not in recovered]  # by this invocation
    summary = summarize_episodes(episodes, n_items=len(prepared.dataset.catalogue))
    if config.agent.is_llm:
        loop = loop_stats_by_phase(records.read_steps(run_dir), config.agent.gamma)
        summary["loop"] = {phase: stats.model_dump() for phase, stats in loop.items()}
    if accounting is not None:
        summary["llm"] = accounting.snapshot()
        summary["tokens_per_step"] = tokens_per_step(summary["llm"], sum(r.steps for r in played))
    if metrics_before is not None and metrics_after is not None:
        summary["server"] = server_summary(metrics_before, metrics_after)
    summary["throughput"] = throughput(len(played), time.monotonic() - started)
    activity = accounting.activity() if accounting is not None else None
    summary["phases"] = clock.summary(
        activity.first_request_at if activity else None, activity.idle_share if activity else None
    )
    write_json_atomic(run_dir / records.SUMMARY_FILE, summary)
    return RunResult(run_dir=run_dir, summary=summary)


def execute(config: RunConfig) -> RunResult:
    """Start a new run of ``config``."""
    prepared = _prepare(config)
    run_dir = prepare_run_dir(config)
    print(f"run directory: {run_dir}", file=sys.stderr, flush=True)
    with locked_run_dir(run_dir):
        return asyncio.run(_execute(config, prepared, run_dir, resume=False))


def resume(run_dir: Path) -> RunResult:
    """Finish a run that was interrupted, from its directory alone."""
    config = records.load_run_config(run_dir)
    with locked_run_dir(run_dir):
        prepared = _prepare(config, fresh=not (run_dir / records.MANIFEST_FILE).is_file())
        return asyncio.run(_execute(config, prepared, run_dir, resume=True))
