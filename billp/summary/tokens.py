"""Tokens per env step: what each step costs the server (prompt tokens to prefill, output
tokens to decode), and how much of the prompts the server's prefix cache served."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
