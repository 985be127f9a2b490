"""Plain data exchanged with language models: messages, sampling, requests, responses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class SamplingParams(BaseModel):
    """Decoding settings sent with every request."""

    model_config = ConfigDict(frozen=True)

    temperature: float = Field(default=0.5, ge=0, description="Sampling temperature.")
    max_tokens: int = Field(default=256, ge=1, description="Completion token limit.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, description="Per-request sampling seed, if any.")
    top_logprobs: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="Also return the log-probabilities of this many most likely tokens at each "
        "generated position (None: none).",
    )


class LLMRequest(BaseModel):
    """A chat completion request for one agent role."""

    role: str = Field(description="Agent role, e.g. 'planner' or 'actor' (used for accounting).")
    messages: list[ChatMessage]
    response_schema: dict[str, Any] | None = Field(
        None, description="JSON schema the reply must follow (structured outputs)."
    )
    schema_name: str = Field(default="reply", description="Name sent with the JSON schema.")
    choices: list[str] | None = Field(
        None,
        description="The reply must be exactly one of these strings (vLLM's choice-constrained "
        "decoding): a bare answer, without the JSON framing a schema costs in output tokens.",
    )
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    model: str | None = Field(
        None, description="Per-role override of the client's model (e.g. a LoRA adapter name)."
    )

    @model_validator(mode="after")
    def _one_constraint(self) -> LLMRequest:
        if self.choices is not None:
            if self.response_schema is not None:
                raise ValueError("a request constrains its reply by a schema or by choices")
            if not self.choices:
                raise ValueError("choices must not be empty")
        return self


class TokenUsage(BaseModel):
    """Token counts reported by the server."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class TokenLogprobs(BaseModel):
    """One generated token and the most likely tokens at its position, with log-probabilities."""

    token: str
    top: dict[str, float] = Field(default_factory=dict)


class LLMResponse(BaseModel):
    """The text of one completion and what it cost."""

    text: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency_s: float = Field(
        default=0.0, ge=0, description="Wall time of the call, retries included."
    )
    model: str
    attempts: int = Field(default=1, ge=1, description="HTTP attempts made (1 + retries).")
    from_cache: bool = False
    logprobs: list[TokenLogprobs] | None = Field(
        default=None, description="Per generated token, when the request asked for them."
    )
