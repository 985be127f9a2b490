"""Throughput and prompt and output tokens per env step in summary.json."""

from __future__ import annotations

from billp.summary.throughput import throughput, tokens_per_step


def test_tokens_per_step_divides_by_env_steps() -> None:
    llm = {
        "planner": {"prompt_tokens": 400, "cached_tokens": 300, "completion_tokens": 60},
        "actor": {"prompt_tokens": 1000, "cached_tokens": 500, "completion_tokens": 40},
    }
    out = tokens_per_step(llm, env_steps=4)
    assert out == {
        "env_steps": 4,
        "prompt_tokens": 350.0,
        "uncached_prompt_tokens": 150.0,
        "cached_share": 0.5714,
        "uncached_by_role": {"actor": 125.0, "planner": 25.0},
        "output_tokens": 25.0,
        "output_by_role": {"actor": 10.0, "planner": 15.0},
    }


def test_no_steps_or_calls_gives_zeros() -> None:
    out = tokens_per_step({}, env_steps=0)
    assert out["prompt_tokens"] == 0.0 and out["cached_share"] == 0.0
    assert out["uncached_by_role"] == {}


def test_throughput_is_the_rate_of_the_rounded_seconds() -> None:
    assert throughput(10, 1800.0004) == {
        "episodes_played": 10,
        "wall_s": 1800.0,
        "users_per_hour": 20.0,
    }
    assert throughput(3, 0.0001)["users_per_hour"] == 0.0
