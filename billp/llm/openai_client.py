"""Client of any OpenAI-compatible chat completions server (vLLM), on plain httpx.

Retries happen only on HTTP 429, HTTP 5xx, time-outs and connection (transport) errors, at
most ``max_retries`` times, with exponential back-off plus jitter; a ``Retry-After`` header
is honoured (capped). Any other 4xx fails at once. The loop is tenacity's (``AsyncRetrying``);
the jittered delay, Retry-After and the balancer's choice of endpoint stay billp's own.

Several ``base_urls`` are balanced by :class:`~billp.llm.endpoints.EndpointBalancer`: each
attempt goes to the healthy endpoint with the fewest requests in flight (equal loads take turns,
round-robin), a retry prefers an endpoint this request has not tried yet, and an endpoint that
fails transiently is skipped, with a logged warning, for ``endpoint_cooldown_s``. The balancer
never fails a request by itself: when every endpoint is unhealthy it still picks one, and only
the bounded retries above decide when a request fails.

The API key only ever travels in the ``Authorization`` header: it is never logged, never part
of an exception message and never part of the client's ``repr``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from billp.config import LLMConfig
from billp.llm.client import LLMRequestError, LLMServerError
from billp.llm.endpoints import ENDPOINT_COOLDOWN_S, EndpointBalancer, redact_url
from billp.llm.messages import LLMRequest, LLMResponse, TokenLogprobs, TokenUsage

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
"""Upper bound of one exponential back-off delay."""
MAX_RETRY_AFTER_S = 60.0
"""Upper bound of a server-requested ``Retry-After`` delay."""
JITTER_FRACTION = 0.5
"""A back-off delay d is drawn uniformly from [d * (1 - JITTER_FRACTION), d]."""
BODY_EXCERPT_CHARS = 500
"""Characters of an error response body quoted in exceptions and logs."""
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVER_ERROR_MIN = 500
HTTP_SERVER_ERROR_MAX = 599
HTTP_CLIENT_ERROR_MIN = 400
REDACTED = "***"

_backoff_sleep = asyncio.sleep
"""The sleep used between retries (a module attribute so tests can replace it)."""


class _RetryableError(Exception):
    """One failed attempt that may be retried; carries the cause and an optional Retry-After."""

    def __init__(self, cause: str, retry_after_s: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds requested by a ``Retry-After`` header (delta-seconds or HTTP date), capped.

    Returns ``None`` when the header is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class OpenAICompatibleClient:
    """Asynchronous ``/chat/completions`` client with retries and balanced endpoints."""

    def __init__(
        self,
        base_urls: Sequence[str],
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        send_seed: bool = True,
        endpoint_cooldown_s: float = ENDPOINT_COOLDOWN_S,
    ) -> None:
        if isinstance(base_urls, str):
            raise TypeError("base_urls must be a sequence of URLs, not a single string")
        urls = [url.strip().rstrip("/") for url in base_urls]
        if not urls or not all(urls):
            raise ValueError(f"base_urls needs at least one non-empty URL, got {list(base_urls)!r}")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"base URL {redact_url(url)!r} must start with http:// or https://"
                )
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, got {backoff_s}")
        self.base_urls = urls
        self.model = model
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.send_seed = send_seed
        self._api_key = api_key or None
        self._endpoints = EndpointBalancer(urls, cooldown_s=endpoint_cooldown_s)
        self._jitter = random.Random()
        headers = {"Content-Type": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(self.timeout_s), headers=headers
        )

    @classmethod
    def from_config(cls, config: LLMConfig) -> OpenAICompatibleClient:
        """Build from ``LLMConfig``; the API key comes from ``os.environ[config.api_key_env]``."""
        if not config.base_url:
            raise ValueError("llm.base_url is empty: give at least one OpenAI-compatible endpoint")
        return cls(
            config.base_url,
            config.model,
            api_key=os.environ.get(config.api_key_env) or None,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            send_seed=config.send_seed,
        )

    def __repr__(self) -> str:
        endpoints = ", ".join(redact_url(url) for url in self.base_urls)
        return f"OpenAICompatibleClient(model={self.model!r}, endpoints=[{endpoints}])"

    async def __aenter__(self) -> OpenAICompatibleClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def build_body(self, request: LLMRequest) -> dict[str, Any]:
        """The JSON body posted for ``request``."""
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": [message.model_dump() for message in request.messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None and self.send_seed:
            body["seed"] = sampling.seed
        if sampling.top_logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = sampling.top_logprobs
        if request.choices is not None:
            body["structured_outputs"] = {"choice": request.choices}
        if request.response_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.response_schema,
                    "strict": True,
                },
            }
        return body

    def _excerpt(self, text: str) -> str:
        excerpt = text[:BODY_EXCERPT_CHARS]
        if self._api_key:
            excerpt = excerpt.replace(self._api_key, REDACTED)
        return excerpt

    def _backoff_delay(self, retry: int, retry_after_s: float | None) -> float:
        """Delay before retry number ``retry`` (0-based)."""
        delay = min(self.backoff_s * (2**retry), MAX_BACKOFF_S)
        delay *= 1.0 - JITTER_FRACTION * self._jitter.random()
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Post ``request``; retry transient failures; parse the first choice.

        Raises:
            LLMServerError: every attempt failed transiently (names endpoint and last cause),
                or the server answered 200 with an unreadable completion.
            LLMRequestError: the server rejected the request with a non-retryable 4xx.
        """
        body = self.build_body(request)
        started = time.perf_counter()
        tried: list[str] = []
        payload: Any = None
        async for attempt in self._retrying(request, tried):
            with attempt:
                endpoint = self._endpoints.acquire(exclude=tried)
                tried.append(endpoint)
                payload = await self._attempt_on(endpoint, body)
        return self._parse(payload, tried[-1], request, len(tried), time.perf_counter() - started)

    def _retrying(self, request: LLMRequest, tried: list[str]) -> AsyncRetrying:
        """The attempts at ``request``: ``1 + max_retries`` at most, only of retryable failures,
        :meth:`_backoff_delay` apart, each retry logged; then :class:`LLMServerError`."""
        attempts = 1 + self.max_retries

        def wait(state: RetryCallState) -> float:
            return self._backoff_delay(state.attempt_number - 1, _failure(state).retry_after_s)

        def log_retry(state: RetryCallState) -> None:
            logger.warning(
                "LLM call (role %s) to %s failed (%s); retry %d/%d in %.2fs",
                request.role,
                redact_url(tried[-1]),
                _failure(state).cause,
                state.attempt_number,
                self.max_retries,
                state.next_action.sleep if state.next_action is not None else 0.0,
            )

        def give_up(state: RetryCallState) -> NoReturn:
            distinct = [redact_url(url) for url in dict.fromkeys(tried)]
            raise LLMServerError(
                f"LLM endpoint {redact_url(tried[-1])} failed after {attempts} attempts "
                f"(role {request.role!r}, endpoints tried: {', '.join(distinct)}): "
                f"{_failure(state).cause}"
            )

        return AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait,
            retry=retry_if_exception_type(_RetryableError),
            before_sleep=log_retry,
            sleep=_sleep,
            retry_error_callback=give_up,
        )

    async def _attempt_on(self, endpoint: str, body: dict[str, Any]) -> Any:
        """One attempt at an acquired ``endpoint``; releases it with the outcome, however it ends.

        A 2xx JSON answer counts as a success and a retryable failure as a failure of the
        endpoint; a rejected request or a cancellation says nothing about its health.
        """
        ok: bool | None = None
        cause = ""
        try:
            payload = await self._attempt(endpoint, body)
        except _RetryableError as exc:
            ok, cause = False, exc.cause
            raise
        else:
            ok = True
            return payload
        finally:
            self._endpoints.release(endpoint, ok, cause)

    async def _attempt(self, endpoint: str, body: dict[str, Any]) -> Any:
        """One POST; returns the decoded JSON of a 2xx answer."""
        url = f"{endpoint}/chat/completions"
        shown = redact_url(url)
        try:
            response = await self._http.post(url, json=body)
        except httpx.UnsupportedProtocol as exc:
            raise LLMRequestError(f"LLM endpoint {shown}: unsupported protocol ({exc})") from None
        except httpx.TimeoutException as exc:
            raise _RetryableError(
                f"timed out after {self.timeout_s:g}s ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise _RetryableError(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == HTTP_TOO_MANY_REQUESTS or HTTP_SERVER_ERROR_MIN <= status <= (
            HTTP_SERVER_ERROR_MAX
        ):
            raise _RetryableError(
                f"HTTP {status}: {self._excerpt(response.text)}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= HTTP_CLIENT_ERROR_MIN:
            raise LLMRequestError(
                f"LLM endpoint {shown} rejected the request with HTTP {status}: "
                f"{self._excerpt(response.text)}"
            )
        try:
            return response.json()
        except ValueError:
            raise LLMServerError(
                f"LLM endpoint {shown} answered HTTP {status} with a body that is not JSON: "
                f"{self._excerpt(response.text)}"
            ) from None

    def _parse(
        self, payload: Any, endpoint: str, request: LLMRequest, attempts: int, latency_s: float
    ) -> LLMResponse:
        """Read ``choices[0].message.content`` and ``usage`` from a completion payload."""
        try:
            message = payload["choices"][0]["message"]
            content = message.get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise LLMServerError(
                f"LLM endpoint {redact_url(endpoint)} returned a completion without "
                f"choices[0].message: {self._excerpt(str(payload))}"
            ) from None
        usage_data = _mapping(payload.get("usage"))
        details = _mapping(usage_data.get("prompt_tokens_details"))
        usage = TokenUsage(
            prompt_tokens=_count(usage_data.get("prompt_tokens")),
            completion_tokens=_count(usage_data.get("completion_tokens")),
            cached_tokens=_count(details.get("cached_tokens")),
        )
        return LLMResponse(
            text="" if content is None else str(content),
            usage=usage,
            latency_s=latency_s,
            model=str(payload.get("model") or request.model or self.model),
            attempts=attempts,
            logprobs=_logprobs(payload) if request.sampling.top_logprobs else None,
        )


async def _sleep(delay: float) -> None:
    """Tenacity's sleep: :data:`_backoff_sleep`, looked up at each retry (tests replace it)."""
    await _backoff_sleep(float(delay))


def _failure(state: RetryCallState) -> _RetryableError:
    """The retryable failure that ended the attempt ``state`` describes."""
    error = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(error, _RetryableError)
    return error


def _logprobs(payload: Any) -> list[TokenLogprobs] | None:
    """``choices[0].logprobs.content`` as :class:`TokenLogprobs` (None when absent or
    unreadable: a server without log-probabilities is no error)."""
    try:
        content = payload["choices"][0]["logprobs"]["content"]
        return [
            TokenLogprobs(
                token=str(entry["token"]),
                top={str(t["token"]): float(t["logprob"]) for t in entry.get("top_logprobs", [])},
            )
            for entry in content
        ]
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (usage fields are optional)."""
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    """A non-negative token count from a usage field; absent or unreadable counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(int(value), 0)
