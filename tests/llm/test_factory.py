"""The run's LLM connection: backends, per-role endpoints, cache wrapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from billp.config import load_config
from billp.llm import CachingClient, LLMRequest, OpenAICompatibleClient, ScriptedLLM
from billp.llm.factory import make_llm_client


async def test_scripted_backend_needs_no_server(tmp_path: Path) -> None:
    config = load_config(overrides={"llm.backend": "scripted"})
    async with make_llm_client(config, tmp_path) as connection:
        assert isinstance(connection.client, ScriptedLLM)
        assert connection.endpoints == [] and connection.server_metrics() is None


async def test_openai_backend_with_a_role_on_its_own_endpoint(tmp_path: Path) -> None:
    config = load_config(
        overrides={
            "llm.backend": "openai",
            "llm.base_url": ["http://shared.test/v1"],
            "llm.model": "base-model",
            "llm.roles": {"actor": {"base_url": ["http://actor.test/v1"], "model": "actor-7b"}},
        }
    )
    async with make_llm_client(config, tmp_path) as connection:
        assert isinstance(connection.client, OpenAICompatibleClient)
        assert connection.client.base_urls == ["http://shared.test/v1"]
        actor = connection.role_clients["actor"]
        assert isinstance(actor, OpenAICompatibleClient)
        assert actor.base_urls == ["http://actor.test/v1"] and actor.model == "actor-7b"
        assert set(connection.role_clients) == {"actor"}


async def test_record_mode_wraps_every_client(tmp_path: Path) -> None:
    config = load_config(
        overrides={
            "llm.backend": "openai",
            "llm.base_url": ["http://shared.test/v1"],
            "llm.cache": "record",
            "llm.roles": {"critic": {"base_url": ["http://critic.test/v1"]}},
        }
    )
    async with make_llm_client(config, tmp_path) as connection:
        assert isinstance(connection.client, CachingClient)
        assert isinstance(connection.role_clients["critic"], CachingClient)


async def test_openai_backend_without_url_is_a_clear_error(tmp_path: Path) -> None:
    config = load_config(overrides={"llm.backend": "openai"})
    with pytest.raises(ValueError, match=r"llm\.base_url"):
        async with make_llm_client(config, tmp_path):
            pass


async def test_scripted_latency_is_added(tmp_path: Path) -> None:
    config = load_config(overrides={"llm.backend": "scripted", "llm.scripted_latency_s": 0.01})
    async with make_llm_client(config, tmp_path) as connection:
        reply = await connection.client.complete(
            LLMRequest(role="critic", messages=[{"role": "user", "content": "hi"}])  # type: ignore[list-item]
        )
        assert reply.latency_s >= 0.01
