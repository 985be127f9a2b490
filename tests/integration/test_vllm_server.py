"""A real vLLM server answers a schema-constrained chat completion."""

from __future__ import annotations

import json

import httpx
import pytest

from billp.llm.server import metrics_snapshot

pytestmark = pytest.mark.integration

REQUEST_TIMEOUT_S = 60.0
CHOICES = [3, 17, 42]


def test_chat_completion_respects_json_schema_enum(vllm_server: str) -> None:
    schema = {
        "type": "object",
        "properties": {"item_id": {"type": "integer", "enum": CHOICES}},
        "required": ["item_id"],
        "additionalProperties": False,
    }
    body = {
        "model": "tiny-llama",
        "messages": [{"role": "user", "content": "Pick one item id."}],
        "max_tokens": 32,
        "temperature": 0.5,
        "seed": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "pick", "schema": schema, "strict": True},
        },
    }
    response = httpx.post(
        f"{vllm_server}/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S, trust_env=False
    )
    assert response.status_code == 200, response.text
    reply = response.json()
    value = json.loads(reply["choices"][0]["message"]["content"])
    assert set(value) == {"item_id"}
    assert value["item_id"] in CHOICES
    assert reply["usage"]["prompt_tokens"] > 0

    counters = metrics_snapshot(vllm_server)
    assert counters["vllm:prompt_tokens_total"] >= reply["usage"]["prompt_tokens"]
    assert counters["vllm:generation_tokens_total"] >= 1
