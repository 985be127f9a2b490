"""OpenAICompatibleClient against fake servers: httpx.MockTransport and a real local socket."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from billp.config import LLMConfig
from billp.llm import (
    ChatMessage,
    LLMRequest,
    LLMRequestError,
    LLMServerError,
    OpenAICompatibleClient,
    SamplingParams,
)
from billp.llm import openai_client as oc

BASE = "http://llm-a.test/v1"
SECRET = "sk-test-SECRET-do-not-leak-42"
TINY_BACKOFF_S = 0.001


def completion(
    content: str | None = "hello", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A minimal chat completion payload."""
    payload: dict[str, Any] = {
        "id": "cmpl-1",
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    if usage is not None:
        payload["usage"] = usage
    return payload


def make_request(**overrides: Any) -> LLMRequest:
    fields: dict[str, Any] = {
        "role": "actor",
        "messages": [ChatMessage(role="user", content="pick an item")],
    }
    fields.update(overrides)
    return LLMRequest(**fields)


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    base_urls: list[str] | None = None,
    **kwargs: Any,
) -> OpenAICompatibleClient:
    kwargs.setdefault("backoff_s", TINY_BACKOFF_S)
    return OpenAICompatibleClient(
        base_urls or [BASE], "test-model", transport=httpx.MockTransport(handler), **kwargs
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record back-off delays instead of sleeping."""
    recorded: list[float] = []

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(oc, "_backoff_sleep", fake_sleep)
    return recorded


def run(client: OpenAICompatibleClient, request: LLMRequest) -> Any:
    async def go() -> Any:
        try:
            return await client.complete(request)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_retries_503_and_429_then_succeeds(sleeps: list[float]) -> None:
    statuses = iter([503, 429])
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses, 200)
        seen.append(status)
        if status != 200:
            return httpx.Response(status, text="busy")
        return httpx.Response(200, json=completion("ok"))

    response = run(make_client(handler, max_retries=3), make_request())
    assert response.text == "ok"
    assert response.attempts == 3
    assert seen == [503, 429, 200]
    assert len(sleeps) == 2


def test_gives_up_after_max_retries_naming_endpoint_and_cause(sleeps: list[float]) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(502, text="bad gateway upstream")

    with pytest.raises(LLMServerError) as info:
        run(make_client(handler, max_retries=2), make_request())
    message = str(info.value)
    assert len(calls) == 3
    assert BASE in message
    assert "after 3 attempts" in message
    assert "HTTP 502" in message and "bad gateway upstream" in message


def test_backoff_is_exponential_with_bounded_jitter(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    with pytest.raises(LLMServerError):
        run(make_client(handler, max_retries=4, backoff_s=1.0), make_request())
    assert len(sleeps) == 4
    for retry, delay in enumerate(sleeps):
        nominal = min(2.0**retry, oc.MAX_BACKOFF_S)
        assert nominal * (1 - oc.JITTER_FRACTION) <= delay <= nominal


def test_backoff_delay_is_capped() -> None:
    client = make_client(lambda r: httpx.Response(200, json=completion()), backoff_s=10.0)
    assert client._backoff_delay(20, None) <= oc.MAX_BACKOFF_S
    asyncio.run(client.aclose())


def test_retry_after_is_honoured_and_capped(sleeps: list[float]) -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503, headers={"Retry-After": "100000"}),
            httpx.Response(200, json=completion("done")),
        ]
    )
    response = run(make_client(lambda r: next(answers), max_retries=2), make_request())
    assert response.text == "done"
    assert sleeps[0] >= 7.0
    assert sleeps[1] == oc.MAX_RETRY_AFTER_S


def test_parse_retry_after_forms() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert oc.parse_retry_after(later, now=now) == pytest.approx(30.0)
    assert oc.parse_retry_after("2.5") == 2.5
    assert oc.parse_retry_after("-3") == 0.0
    assert oc.parse_retry_after(None) is None
    assert oc.parse_retry_after("soon") is None
    assert oc.parse_retry_after("nan") is None


def test_other_4xx_fails_fast_with_status_and_body(sleeps: list[float]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, text='{"error": "max_tokens is too large"}')

    with pytest.raises(LLMRequestError) as info:
        run(make_client(handler, max_retries=3), make_request())
    message = str(info.value)
    assert len(calls) == 1 and not sleeps
    assert "HTTP 400" in message and "max_tokens is too large" in message
    assert f"{BASE}/chat/completions" in message


def test_body_excerpt_is_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="x" * 10_000)

    with pytest.raises(LLMRequestError) as info:
        run(make_client(handler), make_request())
    assert len(str(info.value)) < oc.BODY_EXCERPT_CHARS + 200


def test_timeouts_are_retried_then_reported(sleeps: list[float]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(LLMServerError) as info:
        run(make_client(handler, max_retries=2, timeout_s=5), make_request())
    assert len(calls) == 3
    assert "timed out after 5s" in str(info.value)
    assert BASE in str(info.value)


def test_timeout_then_success(sleeps: list[float]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectTimeout("connect timed out", request=request)
        return httpx.Response(200, json=completion("late"))

    response = run(make_client(handler, max_retries=1), make_request())
    assert response.text == "late" and response.attempts == 2


def test_round_robin_across_endpoints() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(200, json=completion())

    urls = ["http://a.test/v1", "http://b.test/v1/", "http://c.test/v1"]
    client = make_client(handler, base_urls=urls)

    async def go() -> None:
        for _ in range(4):
            await client.complete(make_request())
        await client.aclose()

    asyncio.run(go())
    assert hosts == ["a.test", "b.test", "c.test", "a.test"]


def test_retry_moves_to_next_endpoint(sleeps: list[float]) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.host == "a.test":
            return httpx.Response(503)
        return httpx.Response(200, json=completion("from b"))

    client = make_client(handler, base_urls=["http://a.test/v1", "http://b.test/v1"])
    response = run(client, make_request())
    assert hosts == ["a.test", "b.test"]
    assert response.text == "from b" and response.attempts == 2


def test_request_body_shape_with_response_format() -> None:
    bodies: list[dict[str, Any]] = []
    headers: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        headers.append(request.headers)
        assert request.url.path == "/v1/chat/completions"
        return httpx.Response(200, json=completion('{"x": 1}'))

    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    request = make_request(
        response_schema=schema,
        schema_name="ActorReply",
        sampling=SamplingParams(temperature=0.2, max_tokens=64, top_p=0.9, seed=7),
        model="lora-actor",
    )
    run(make_client(handler, api_key=SECRET), request)
    body = bodies[0]
    assert body["model"] == "lora-actor"
    assert body["messages"] == [{"role": "user", "content": "pick an item"}]
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["max_tokens"] == 64 and body["seed"] == 7
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "ActorReply", "schema": schema, "strict": True},
    }
    assert headers[0]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps(body)


def test_choices_are_sent_as_vllm_structured_outputs() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion("16"))

    run(make_client(handler), make_request(choices=["6", "16"]))
    assert bodies[0]["structured_outputs"] == {"choice": ["6", "16"]}
    assert "response_format" not in bodies[0]


def test_plain_request_has_no_response_format_or_seed() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        assert "authorization" not in request.headers
        return httpx.Response(200, json=completion())

    run(make_client(handler), make_request())
    assert "response_format" not in bodies[0] and "seed" not in bodies[0]
    assert bodies[0]["model"] == "test-model"


def test_usage_parsing_and_null_content() -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 8,
        "prompt_tokens_details": {"cached_tokens": 96},
    }
    response = run(
        make_client(lambda r: httpx.Response(200, json=completion(None, usage))), make_request()
    )
    assert response.text == ""
    assert response.usage.prompt_tokens == 120
    assert response.usage.completion_tokens == 8
    assert response.usage.cached_tokens == 96
    assert response.model == "served-model"
    assert response.latency_s >= 0 and not response.from_cache


def test_missing_usage_counts_zero() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None}
    response = run(
        make_client(lambda r: httpx.Response(200, json=completion("a", usage))), make_request()
    )
    assert response.usage.cached_tokens == 0 and response.usage.prompt_tokens == 5
    response = run(make_client(lambda r: httpx.Response(200, json=completion("a"))), make_request())
    assert response.usage.prompt_tokens == 0


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"choices": []}),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
)
def test_malformed_success_is_a_server_error(answer: httpx.Response) -> None:
    with pytest.raises(LLMServerError, match=re.escape(BASE)):
        run(make_client(lambda r: answer), make_request())


def test_api_key_never_in_errors_or_repr(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # a misbehaving server echoing the header back must not leak it either
        return httpx.Response(500, text=f"auth was {request.headers['authorization']}")

    client = make_client(handler, api_key=SECRET, max_retries=1)
    assert SECRET not in repr(client)
    with pytest.raises(LLMServerError) as info:
        run(client, make_request())
    assert SECRET not in str(info.value)
    assert oc.REDACTED in str(info.value)


def test_url_credentials_are_redacted_in_errors(sleeps: list[float]) -> None:
    client = make_client(
        lambda r: httpx.Response(500), base_urls=["http://user:pw@h.test/v1"], max_retries=0
    )
    with pytest.raises(LLMServerError) as info:
        run(client, make_request())
    assert "pw" not in str(info.value) and "http://h.test/v1" in str(info.value)


def test_constructor_validates_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        OpenAICompatibleClient([], "m")
    with pytest.raises(TypeError, match="sequence"):
        OpenAICompatibleClient("http://a.test/v1", "m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http://"):
        OpenAICompatibleClient(["a.test/v1"], "m")
    with pytest.raises(ValueError, match="timeout_s"):
        OpenAICompatibleClient([BASE], "m", timeout_s=0)


def test_from_config_reads_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLP_TEST_KEY", SECRET)
    config = LLMConfig(
        backend="openai",
        model="qwen",
        base_url=["http://x.test/v1"],
        api_key_env="BILLP_TEST_KEY",
        max_retries=5,
        timeout_s=9,
    )
    client = OpenAICompatibleClient.from_config(config)
    assert client.base_urls == ["http://x.test/v1"] and client.model == "qwen"
    assert client.max_retries == 5 and client.timeout_s == 9
    assert client._http.headers["authorization"] == f"Bearer {SECRET}"
    asyncio.run(client.aclose())
    monkeypatch.delenv("BILLP_TEST_KEY")
    client = OpenAICompatibleClient.from_config(config)
    assert "authorization" not in client._http.headers
    asyncio.run(client.aclose())
    with pytest.raises(ValueError, match=r"llm\.base_url"):
        OpenAICompatibleClient.from_config(LLMConfig(backend="openai"))


# --- a real HTTP server on 127.0.0.1 ---------------------------------------------------------


async def _serve_flaky(failures: int) -> tuple[asyncio.Server, list[dict[str, Any]]]:
    """A tiny HTTP/1.1 server: HTTP 500 ``failures`` times, then a valid completion."""
    received: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = json.loads(await reader.readexactly(length))
        received.append({"line": lines[0], "body": body})
        if len(received) <= failures:
            status, payload = "500 Internal Server Error", b'{"error": "warming up"}'
        else:
            status = "200 OK"
            payload = json.dumps(completion("served", {"prompt_tokens": 3})).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, received


def test_real_local_server_500_twice_then_success() -> None:
    async def go() -> tuple[Any, list[dict[str, Any]]]:
        server, received = await _serve_flaky(failures=2)
        port = server.sockets[0].getsockname()[1]
        client = OpenAICompatibleClient(
            [f"http://127.0.0.1:{port}/v1"],
            "m",
            max_retries=3,
            backoff_s=TINY_BACKOFF_S,
            timeout_s=5,
        )
        try:
            return await client.complete(make_request()), received
        finally:
            await client.aclose()
            server.close()
            await server.wait_closed()

    response, received = asyncio.run(go())
    assert response.text == "served" and response.attempts == 3
    assert response.usage.prompt_tokens == 3
    assert [r["line"] for r in received] == ["POST /v1/chat/completions HTTP/1.1"] * 3
    assert received[0]["body"]["messages"][0]["content"] == "pick an item"


def test_closed_port_is_a_server_error_naming_endpoint() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/v1"
    client = OpenAICompatibleClient(
        [endpoint], "m", max_retries=1, backoff_s=TINY_BACKOFF_S, timeout_s=5
    )
    with pytest.raises(LLMServerError) as info:
        run(client, make_request())
    assert endpoint in str(info.value)
    assert "after 2 attempts" in str(info.value)
    assert "ConnectError" in str(info.value)


def test_seed_is_withheld_when_send_seed_is_off() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion())

    client = OpenAICompatibleClient(
        ["http://llm.test/v1"], "m", transport=httpx.MockTransport(handler), send_seed=False
    )
    run(client, make_request(sampling=SamplingParams(seed=7)))
    assert "seed" not in bodies[0]


def test_top_logprobs_are_asked_for_and_read() -> None:
    bodies: list[dict[str, Any]] = []
    payload = completion('{"value":4}')
    payload["choices"][0]["logprobs"] = {
        "content": [
            {
                "token": "4",
                "logprob": -0.4,
                "top_logprobs": [{"token": "4", "logprob": -0.4}, {"token": "3", "logprob": -1.2}],
            },
        ]
    }

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=payload)

    asked = make_request(sampling=SamplingParams(top_logprobs=5))
    response = run(make_client(handler), asked)
    assert bodies[0]["logprobs"] is True and bodies[0]["top_logprobs"] == 5
    assert response.logprobs is not None
    assert response.logprobs[0].token == "4" and response.logprobs[0].top == {"4": -0.4, "3": -1.2}
    assert run(make_client(handler), make_request()).logprobs is None
    del payload["choices"][0]["logprobs"]
    assert run(make_client(handler), asked).logprobs is None  # a server without them: no error
