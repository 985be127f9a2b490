"""Message models: defaults, validation and usage arithmetic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billp.llm import ChatMessage, LLMRequest, LLMResponse, SamplingParams, TokenUsage


def test_defaults() -> None:
    request = LLMRequest(role="planner", messages=[ChatMessage(role="user", content="hi")])
    assert request.sampling == SamplingParams(temperature=0.5, max_tokens=256, top_p=1.0, seed=None)
    assert request.response_schema is None and request.schema_name == "reply"
    assert request.model is None
    response = LLMResponse(text="x", model="m")
    assert response.attempts == 1 and not response.from_cache and response.usage == TokenUsage()


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValidationError, match="role"):
        ChatMessage(role="tool", content="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="max_tokens"):
        SamplingParams(max_tokens=0)
    with pytest.raises(ValidationError, match="attempts"):
        LLMResponse(text="x", model="m", attempts=0)


def test_usage_addition() -> None:
    total = TokenUsage(prompt_tokens=1, completion_tokens=2, cached_tokens=3) + TokenUsage(
        prompt_tokens=10, completion_tokens=20, cached_tokens=30
    )
    assert total == TokenUsage(prompt_tokens=11, completion_tokens=22, cached_tokens=33)
