"""LLM access for the agent's roles: messages, clients, structured outputs, accounting, cache."""

from __future__ import annotations

from billp.llm.accounting import Accounting, RoleStats, nearest_rank_percentile
from billp.llm.cache import (
    CacheCorruptError,
    CacheMissError,
    CachingClient,
    ResponseCache,
    cache_key,
)
from billp.llm.client import LLMClient, LLMError, LLMRequestError, LLMServerError
from billp.llm.factory import make_llm_client
from billp.llm.messages import ChatMessage, LLMRequest, LLMResponse, SamplingParams, TokenUsage
from billp.llm.openai_client import OpenAICompatibleClient
from billp.llm.scripted import ScriptedLLM, ScriptedSchemaError
from billp.llm.structured import call_structured

__all__ = [
    "Accounting",
    "CacheCorruptError",
    "CacheMissError",
    "CachingClient",
    "ChatMessage",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LLMRequestError",
    "LLMResponse",
    "LLMServerError",
    "OpenAICompatibleClient",
    "ResponseCache",
    "RoleStats",
    "SamplingParams",
    "ScriptedLLM",
    "ScriptedSchemaError",
    "TokenUsage",
    "cache_key",
    "call_structured",
    "make_llm_client",
    "nearest_rank_percentile",
]
