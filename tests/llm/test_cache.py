"""ResponseCache and CachingClient: record, replay, misses, atomic files, no secrets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from billp.llm import (
    Accounting,
    CacheCorruptError,
    CacheMissError,
    CachingClient,
    ChatMessage,
    LLMError,
    LLMRequest,
    LLMResponse,
    OpenAICompatibleClient,
    ResponseCache,
    SamplingParams,
    ScriptedLLM,
    cache_key,
    call_structured,
)
from billp.llm.cache import SHARD_CHARS

SECRET = "sk-live-SECRET-never-on-disk-1234"


def make_request(content: str = "hello", **kw: Any) -> LLMRequest:
    return LLMRequest(
        role=kw.pop("role", "planner"),
        messages=[ChatMessage(role="user", content=content)],
        response_schema=kw.pop("response_schema", {"type": "object", "properties": {}}),
        **kw,
    )


class ExplodingClient:
    """A client that must not be called."""

    model = "scripted"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise AssertionError("the wrapped client was called in replay mode")

    async def aclose(self) -> None:
        return None


KEY_BEFORE_CHOICES = "b0426d9e9a3c7268d9e8f30979866ae12520adc5f6c88261fa1b435ff17e37e0"
"""``cache_key(make_request(), "m")`` at 900247c, before requests could carry choices."""


def test_key_covers_model_messages_schema_and_sampling_only() -> None:
    base = make_request()
    key = cache_key(base, "m")
    assert len(key) == 64 and key == cache_key(make_request(), "m")
    assert cache_key(base, "other") != key
    assert cache_key(make_request(model="lora"), "m") != key
    assert cache_key(make_request("bye"), "m") != key
    assert cache_key(make_request(response_schema=None), "m") != key
    assert cache_key(make_request(sampling=SamplingParams(seed=1)), "m") != key
    assert cache_key(make_request(role="critic"), "m") == key
    choice = make_request(response_schema=None, choices=["1", "2"])
    assert cache_key(choice, "m") != cache_key(make_request(response_schema=None), "m")
    assert cache_key(choice, "m") != cache_key(choice.model_copy(update={"choices": ["1"]}), "m")


def test_keys_of_requests_without_choices_did_not_change() -> None:
    """Choices enter the key only when a request has them: stores recorded before they
    existed replay unchanged."""
    assert cache_key(make_request(), "m") == KEY_BEFORE_CHOICES


def test_record_then_replay(tmp_path: Path) -> None:
    request = make_request()

    async def record() -> LLMResponse:
        client = CachingClient(ScriptedLLM(3), ResponseCache(tmp_path, "record"))
        return await client.complete(request)

    recorded = asyncio.run(record())
    key = cache_key(request, "scripted")
    path = tmp_path / key[:SHARD_CHARS] / f"{key}.json"
    stored = json.loads(path.read_text())
    assert stored["key"] == key
    assert stored["request"]["role"] == "planner" and stored["request"]["model"] == "scripted"
    assert stored["request"]["messages"] == [{"role": "user", "content": "hello"}]
    assert stored["response"]["text"] == recorded.text
    assert not list(tmp_path.rglob("*.tmp"))

    async def replay() -> tuple[LLMResponse, Accounting]:
        client = CachingClient(ExplodingClient(), ResponseCache(tmp_path, "replay"))
        accounting = Accounting()
        response = await client.complete(request)
        accounting.record_response("planner", response)
        return response, accounting

    replayed, accounting = asyncio.run(replay())
    assert replayed.text == recorded.text and replayed.from_cache
    assert accounting.stats("planner").cache_hits == 1


def test_replay_miss_names_key_and_role(tmp_path: Path) -> None:
    tmp_path.joinpath("store").mkdir()
    client = CachingClient(ExplodingClient(), ResponseCache(tmp_path / "store", "replay"))
    request = make_request(role="critic")
    with pytest.raises(CacheMissError) as info:
        asyncio.run(client.complete(request))
    assert cache_key(request, "scripted") in str(info.value)
    assert "'critic'" in str(info.value)
    assert isinstance(info.value, LLMError)


def test_replay_of_a_missing_folder_fails_early(tmp_path: Path) -> None:
    with pytest.raises(CacheMissError, match="does not exist"):
        ResponseCache(tmp_path / "nowhere", "replay")


def test_off_mode_passes_through_and_writes_nothing(tmp_path: Path) -> None:
    client = CachingClient(ScriptedLLM(0), ResponseCache(tmp_path / "c", "off"))
    response = asyncio.run(client.complete(make_request()))
    assert not response.from_cache
    assert not (tmp_path / "c").exists()


def test_invalid_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache mode"):
        ResponseCache(tmp_path, "write")  # type: ignore[arg-type]


def test_corrupt_record_names_the_file(tmp_path: Path) -> None:
    request = make_request()
    cache = ResponseCache(tmp_path, "record")
    asyncio.run(CachingClient(ScriptedLLM(0), cache).complete(request))
    path = cache.path_of(cache_key(request, "scripted"))
    path.write_text("{not json")
    with pytest.raises(CacheCorruptError, match=str(path)):
        asyncio.run(
            CachingClient(ExplodingClient(), ResponseCache(tmp_path, "replay")).complete(request)
        )


def test_structured_calls_replay_identically(tmp_path: Path) -> None:
    from pydantic import BaseModel

    class Reply(BaseModel):
        text: str
        score: int

    async def run(client: Any) -> list[Reply]:
        values = []
        for step in range(5):
            outcome = await call_structured(
                client,
                role="actor",
                messages=[ChatMessage(role="user", content=f"step {step}")],
                output_type=Reply,
                sampling=SamplingParams(),
                accounting=Accounting(),
                fallback=lambda: Reply(text="", score=0),
            )
            values.append(outcome.value)
        return values

    recorded = asyncio.run(run(CachingClient(ScriptedLLM(9), ResponseCache(tmp_path, "record"))))
    replayed = asyncio.run(run(CachingClient(ExplodingClient(), ResponseCache(tmp_path, "replay"))))
    assert recorded == replayed
    assert len(ResponseCache(tmp_path, "replay")) == 5


def test_api_key_never_reaches_cached_files(tmp_path: Path) -> None:
    seen_headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_headers.append(request.headers["authorization"])
        return httpx.Response(
            200,
            json={
                "model": "served",
                "choices": [{"message": {"content": '{"ok": true}'}}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 3},
            },
        )

    inner = OpenAICompatibleClient(
        ["http://llm.test/v1"], "m", api_key=SECRET, transport=httpx.MockTransport(handler)
    )
    client = CachingClient(inner, ResponseCache(tmp_path, "record"))

    async def go() -> None:
        for step in range(3):
            await client.complete(make_request(f"step {step}", role="reflector"))
        await client.aclose()

    asyncio.run(go())
    assert seen_headers == [f"Bearer {SECRET}"] * 3
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) == 3
    for path in files:
        text = path.read_text()
        assert SECRET not in text and "authorization" not in text.lower()
    assert SECRET not in repr(client)
