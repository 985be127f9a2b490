"""What a run's episodes cost: simulated users per hour, and tokens per env step (prompt
tokens to prefill, output tokens to decode, and how much of the prompts the server's prefix
cache served)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def throughput(episodes_played: int, wall_s: float) -> dict[str, float | int]:
    """Simulated users per hour of this process's wall clock (one episode plays one user;
    episodes recovered by ``--resume`` are not counted). The rate is that of the rounded
    seconds written beside it, so the two agree."""
    wall = round(wall_s, 3)
    return {
        "episodes_played": episodes_played,
        "wall_s": wall,
        "users_per_hour": round(episodes_played * 3600.0 / wall, 2) if wall > 0 else 0.0,
    }


def tokens_per_step(llm: Mapping[str, Mapping[str, Any]], env_steps: int) -> dict[str, Any]:
    """Prompt, uncached prompt and output tokens per env step, overall and by role.

    ``llm`` is the accounting snapshot (``summary.json``'s ``llm``) of the calls this
    process made; ``env_steps`` the env steps of the episodes it played (a quit step
    counts: its call was made). Uncached = prompt tokens the server had to prefill; output
    tokens are decoded one forward pass each, which on a CPU makes them the larger cost.
    """
    prompt = sum(int(stats["prompt_tokens"]) for stats in llm.values())
    output = sum(int(stats["completion_tokens"]) for stats in llm.values())
    cached = sum(int(stats["cached_tokens"]) for stats in llm.values())

    def per_step(value: int) -> float:
        return round(value / env_steps, 1) if env_steps else 0.0

    return {
        "env_steps": env_steps,
        "prompt_tokens": per_step(prompt),
        "uncached_prompt_tokens": per_step(prompt - cached),
        "cached_share": round(cached / prompt, 4) if prompt else 0.0,
        "uncached_by_role": {
            role: per_step(int(stats["prompt_tokens"]) - int(stats["cached_tokens"]))
            for role, stats in sorted(llm.items())
        },
        "output_tokens": per_step(output),
        "output_by_role": {
            role: per_step(int(stats["completion_tokens"])) for role, stats in sorted(llm.items())
        },
    }
