"""Per-phase statistics of BiLLP's learning loop, from the ``loop`` records of steps.

Each BiLLP step of ``steps.jsonl`` carries a :class:`billp.agents.loop_trace.LoopTrace`
as ``trace.loop`` (a memoryless policy's steps have none). From them this module reports,
per phase:

* reflection retrieval: share of episodes whose Planner saw at least one reflection, and
  the mean similarity of what it saw;
* hint rate: share of steps on which the Actor was shown at least one actor-memory hint;
  hint-follow rate: share of those steps on which it chose an encouraged item;
* critic reuse rate: share of V(s) estimates taken from critic memory;
* advantage sign balance: share of steps with a negative advantage, and the minority
  sign's share (0.5 is balanced; 0 means the sign carries no information);
* the Critic's calibration: Spearman correlation of V(s) with the realised discounted
  average return from that step, ``(1 - gamma) * sum_k gamma^k r_{t+k}`` with the quit
  step booked at the quit value, on the scale the Critic is asked to use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import numpy as np
from pydantic import BaseModel
from scipy.stats import spearmanr

from billp.agents.billp_traces import BillpStepTrace
from billp.agents.loop_trace import LoopTrace


class PhaseLoopStats(BaseModel):
    """The learning loop's statistics for one phase (None where nothing was measured)."""

    episodes: int
    steps: int
    reflection_retrieval_rate: float | None
    reflection_similarity_mean: float | None
    hint_rate: float | None
    hint_follow_rate: float | None
    followed_discouraged: int
    critic_reuse_rate: float | None
    value_estimates: int
    negative_advantage_share: float | None
    minority_advantage_share: float | None
    critic_spearman: float | None
    critic_spearman_pairs: int


class StepLine(Protocol):
    """What these statistics read of a line of ``steps.jsonl``: the attributes of
    ``billp.records``' line models (a sibling layer, so not imported here). An episode's
    own line (its reflection) has no step number."""

    episode: str
    phase: str
    step: int | None
    trace: object


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def realised_returns(booked: list[float], gamma: float) -> list[float]:
    """Discounted average return from each step: ``(1 - gamma) * sum_k gamma^k r_{t+k}``."""
    out = [0.0] * len(booked)
    running = 0.0
    for t in range(len(booked) - 1, -1, -1):
        running = (1.0 - gamma) * booked[t] + gamma * running
        out[t] = running
    return out


def _loop(line: StepLine) -> LoopTrace:
    """The step's learning loop (an empty one for a policy without one)."""
    return line.trace.loop if isinstance(line.trace, BillpStepTrace) else LoopTrace()


def phase_loop_stats(step_lines: Iterable[StepLine], gamma: float) -> PhaseLoopStats:
    """Statistics of the loop records among ``step_lines`` (one phase's steps)."""
    episodes: dict[str, list[tuple[int, LoopTrace]]] = defaultdict(list)
    for line in step_lines:
        if line.step is not None:
            episodes[line.episode].append((line.step, _loop(line)))
    steps = retrieved_episodes = hinted = followed = followed_bad = 0
    value_from_memory = value_estimates = negative = signed = 0
    similarities: list[float] = []
    values: list[float] = []
    returns: list[float] = []
    for numbered in episodes.values():
        loops = [loop for _, loop in sorted(numbered, key=lambda pair: pair[0])]
        if loops and loops[0].reflections:
            retrieved_episodes += 1
            similarities += [r.similarity for r in loops[0].reflections if r.similarity is not None]
        for loop in loops:
            steps += 1
            if loop.hints:
                hinted += 1
                if loop.followed_hint == 1:
                    followed += 1
                elif loop.followed_hint == -1:
                    followed_bad += 1
            if loop.value_source in ("memory", "critic", "session"):
                value_estimates += 1
                value_from_memory += loop.value_source == "memory"
            if loop.advantage is not None:
                signed += 1
                negative += loop.advantage < 0
        booked = [loop.reward_booked for loop in loops if loop.reward_booked is not None]
        if booked and len(booked) == len(loops):
            for loop, ret in zip(loops, realised_returns(booked, gamma), strict=True):
                if loop.v is not None:
                    values.append(loop.v)
                    returns.append(ret)
    spearman = None
    if len(values) >= 3 and np.ptp(values) > 0 and np.ptp(returns) > 0:
        spearman = round(float(spearmanr(values, returns).statistic), 4)
    negative_share = _rate(negative, signed)
    return PhaseLoopStats(
        episodes=len(episodes),
        steps=steps,
        reflection_retrieval_rate=_rate(retrieved_episodes, len(episodes)),
        reflection_similarity_mean=round(float(np.mean(similarities)), 4) if similarities else None,
        hint_rate=_rate(hinted, steps),
        hint_follow_rate=_rate(followed, hinted),
        followed_discouraged=followed_bad,
        critic_reuse_rate=_rate(value_from_memory, value_estimates),
        value_estimates=value_estimates,
        negative_advantage_share=negative_share,
        minority_advantage_share=(
            None if negative_share is None else round(min(negative_share, 1 - negative_share), 4)
        ),
        critic_spearman=spearman,
        critic_spearman_pairs=len(values),
    )


def loop_stats_by_phase(step_lines: Iterable[StepLine], gamma: float) -> dict[str, PhaseLoopStats]:
    """:func:`phase_loop_stats` for each phase found in ``step_lines``."""
    phases: dict[str, list[StepLine]] = defaultdict(list)
    for line in step_lines:
        phases[line.phase].append(line)
    return {phase: phase_loop_stats(lines, gamma) for phase, lines in sorted(phases.items())}
