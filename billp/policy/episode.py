"""The one episode loop: a policy's episode agent against a Gymnasium env, reset to its end.

The runner (which records steps and commits memories) and the world-fidelity rollouts (which
only need items, rewards and the quit reason) both play through :func:`play_episode`. The env
is wrapped in Gymnasium's ``RecordEpisodeStatistics``, whose ``info["episode"]`` (return,
length in env steps, seconds) comes back as :attr:`PlayedEpisode.statistics`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import gymnasium as gym
from gymnasium.wrappers import RecordEpisodeStatistics

from billp.policy.protocol import EpisodeAgent, EpisodeSummary, Transition
from billp.policy.trace import TraceRecord
from billp.policy.writes import MemoryWrites

T = TypeVar("T")


@dataclass(frozen=True)
class PlayedStep:
    """One env step as the loop saw it."""

    action: int
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    env_step_s: float
    """Wall-clock seconds of ``env.step``."""
    trace: TraceRecord
    """The step's trace as recorded: what the agent's ``act`` and ``observe`` returned
    (what it asked, saw, decided and learnt), folded by
    :meth:`~billp.policy.trace.TraceRecord.with_observed`."""


@dataclass(frozen=True)
class PlayedEpisode:
    """A finished episode: its steps, the summary handed to the agent and what it returned."""

    steps: list[PlayedStep]
    summary: EpisodeSummary
    writes: MemoryWrites
    """Memory writes the agent buffered (committed, or not, by the caller)."""
    episode_trace: TraceRecord | None
    """The episode trace ``end_episode`` returned (None: no episode-level calls)."""
    statistics: dict[str, float]
    """Gymnasium's episode statistics: ``r`` (return), ``l`` (env steps), ``t`` (seconds)."""


async def _env_call(
    threads: Executor | None, call: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """``call`` in ``threads`` when given (a slow env: a forward pass per step, so other
    episodes' LLM requests go out meanwhile, and the LE batches concurrent steps), else inline,
    which keeps the order of concurrent episodes, and so scripted runs, deterministic."""
    if threads is not None:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # as asyncio.to_thread does
        bound = functools.partial(context.run, call, *args, **kwargs)
        return await loop.run_in_executor(threads, bound)
    return call(*args, **kwargs)


async def play_episode(
    agent: EpisodeAgent,
    env: gym.Env,
    user_id: int,
    seed: int,
    threads: Executor | None = None,
) -> PlayedEpisode:
    """Reset ``env`` to ``user_id`` with ``seed`` and play ``agent`` until the env terminates
    (the user quit) or truncates (its time limit); ``env`` is closed afterwards. ``threads``:
    where env calls run (None: inline, on the event loop)."""
    recorded = RecordEpisodeStatistics(env)
    try:
        obs, info = await _env_call(
            threads, recorded.reset, seed=seed, options={"user_id": user_id}
        )
        await agent.reset(info)
        steps: list[PlayedStep] = []
        terminated = truncated = False
        while not (terminated or truncated):
            decision = await agent.act(obs, info)
            action = int(decision.item_id)
            started = time.perf_counter()
            obs, reward, terminated, truncated, info = await _env_call(
                threads, recorded.step, action
            )
            elapsed = time.perf_counter() - started
            observed = await agent.observe(
                Transition(
                    action=action,
                    reward=float(reward),
                    terminated=terminated,
                    truncated=truncated,
                    next_obs=obs,
                    info=info,
                )
            )
            steps.append(
                PlayedStep(
                    action=action,
                    reward=float(reward),
                    terminated=bool(terminated),
                    truncated=bool(truncated),
                    info=info,
                    env_step_s=elapsed,
                    trace=decision.trace.with_observed(observed),
                )
            )
    finally:
        recorded.close()
    summary = EpisodeSummary(
        user_id=user_id,
        items=[s.action for s in steps],
        rewards=[round(s.reward, 6) for s in steps],
        terminated=bool(terminated),
        truncated=bool(truncated),
        quit_reason=info.get("quit_reason") if terminated else None,
    )
    ended = await agent.end_episode(summary)
    statistics = {k: float(v) for k, v in info.get("episode", {}).items()}
    return PlayedEpisode(
        steps=steps,
        summary=summary,
        writes=ended.writes,
        episode_trace=ended.trace,
        statistics=statistics,
    )
