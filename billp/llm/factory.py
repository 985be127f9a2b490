"""Build the LLM client a run asks for, including the vLLM server it may need."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from billp.config import RunConfig
from billp.llm.cache import CachingClient, ResponseCache
from billp.llm.client import LLMClient, LLMError
from billp.llm.hint_follower import HintFollowingScriptedLLM
from billp.llm.messages import LLMRequest, LLMResponse
from billp.llm.openai_client import OpenAICompatibleClient
from billp.llm.scripted import ScriptedLLM, request_seed

log = logging.getLogger(__name__)


@dataclass
class LLMConnection:
    """A run's LLM client and the OpenAI-compatible endpoints behind it (if any)."""

    client: LLMClient
    endpoints: list[str] = field(default_factory=list)
    role_clients: dict[str, LLMClient] = field(default_factory=dict)
    """Clients of roles with their own endpoint (``llm.roles.<role>.base_url``)."""

    def server_metrics(self) -> dict[str, float] | None:
        """vLLM's counters summed over the endpoints; ``None`` without endpoints or /metrics."""
        if not self.endpoints:
            return None
        from billp.llm.server import metrics_snapshot

        total: dict[str, float] = {}
        try:
            for url in self.endpoints:
                for name, value in metrics_snapshot(url).items():
                    total[name] = total.get(name, 0.0) + value
        except httpx.HTTPError as exc:
            log.warning("no /metrics from %s: %s", self.endpoints, exc)
            return None
        return total


@contextlib.asynccontextmanager
async def make_llm_client(config: RunConfig, run_dir: Path) -> AsyncIterator[LLMConnection]:
    """Yield the connection of ``config.llm``; close it (and any server billp started) on exit.

    - ``scripted``: the deterministic offline LLM, seeded by the run seed.
    - ``openai``: the server(s) at ``llm.base_url``.
    - ``vllm``: ``llm.base_url`` when given, else a vLLM server started here for
      ``llm.model`` and stopped when the run ends, however it ends.

    ``llm.cache`` wraps the client in the record/replay response cache; ``replay`` needs
    no server at all.
    """
    llm = config.llm
    cache = None
    if llm.cache != "off":
        cache = ResponseCache(llm.cache_dir or run_dir / "llm_cache", llm.cache)
    async with contextlib.AsyncExitStack() as stack:
        client: LLMClient
        base_urls: list[str] = []
        served_name = llm.served_model_name
        if llm.backend == "scripted":
            client = (
                HintFollowingScriptedLLM(seed=config.seed)
                if llm.scripted_policy == "follow-hints"
                else ScriptedLLM(seed=config.seed)
            )
            if llm.scripted_latency_s > 0:
                client = _Delayed(client, llm.scripted_latency_s)
        elif llm.cache == "replay":
            client = _ReplayOnly()
        else:
            base_urls = list(llm.base_url)
            if not base_urls:
                if llm.backend == "openai":
                    raise ValueError("llm.base_url: the 'openai' backend needs at least one URL")
                from billp.common.provision import resolve_model
                from billp.llm.server import VLLMServer

                # The first conversion of the packaged GGUF takes ~20 s: keep the loop free.
                model = await asyncio.to_thread(
                    resolve_model, llm.model, served_name=llm.served_model_name
                )
                served_name = model.served_name
                server = VLLMServer(model, llm.server, run_dir / "vllm_server.log")
                await stack.enter_async_context(server)
                base_urls = [server.base_url]
                log.info("vLLM server for %s ready at %s", served_name, server.base_url)
            client = OpenAICompatibleClient.from_config(
                llm.model_copy(update={"base_url": base_urls, "model": served_name or llm.model})
            )
        role_clients: dict[str, LLMClient] = {}
        if llm.backend != "scripted" and llm.cache != "replay":
            for role, override in llm.roles.items():
                if override.base_url:
                    role_clients[role] = OpenAICompatibleClient.from_config(
                        llm.model_copy(
                            update={
                                "base_url": override.base_url,
                                "model": override.model or served_name or llm.model,
                            }
                        )
                    )
        if cache is not None:
            # Keyed by the configured model, so a replay needs no provisioning or server.
            key_model = llm.served_model_name or llm.model
            client = CachingClient(client, cache, model=key_model)
            role_clients = {
                role: CachingClient(inner, cache, model=key_model)
                for role, inner in role_clients.items()
            }
        try:
            yield LLMConnection(client, base_urls, role_clients)
        finally:
            await client.aclose()
            for role_client in role_clients.values():
                await role_client.aclose()


class _Delayed:
    """Adds latency to every reply of another client (simulates a server).

    Each request waits ``delay_s`` times a factor in [0.5, 1.5) drawn from the request
    itself, so concurrent episodes finish in an order that differs from a replay's (which
    answers at once) while staying reproducible.
    """

    def __init__(self, inner: LLMClient, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s

    async def complete(self, request: LLMRequest) -> LLMResponse:
        factor = 0.5 + (request_seed(0, request) % 1000) / 1000
        delay = self._delay_s * factor
        await asyncio.sleep(delay)
        response = await self._inner.complete(request)
        return response.model_copy(update={"latency_s": response.latency_s + delay})

    async def aclose(self) -> None:
        await self._inner.aclose()


class _ReplayOnly:
    """Stands in for the server in replay mode: any request the cache misses is an error."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise LLMError(f"replay mode: no recorded reply for a {request.role} request")

    async def aclose(self) -> None:
        return None
