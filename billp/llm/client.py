"""The asynchronous client protocol every LLM backend implements, and its errors."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from billp.llm.messages import LLMRequest, LLMResponse


class LLMError(RuntimeError):
    """Base of every error raised by an LLM client."""


class LLMServerError(LLMError):
    """The server could not answer: retries exhausted. Names the endpoint and the last cause."""


class LLMRequestError(LLMError):
    """The server rejected the request (a non-retryable 4xx). Names endpoint, status and body."""


@runtime_checkable
class LLMClient(Protocol):
    """Anything that answers chat completion requests asynchronously."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer one request."""
        ...

    async def aclose(self) -> None:
        """Release connections; the client is unusable afterwards."""
        ...
