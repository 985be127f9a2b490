"""A fake OpenAI-compatible server for tests: scripted replies, optionally dying after N.

Usage: python fake_openai_server.py PORT [DIE_AFTER]

Answers ``POST /v1/chat/completions`` with the scripted offline LLM (schema-valid JSON)
and ``GET /health`` with 200. After DIE_AFTER completions the process exits at once,
like a crashed server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from billp.llm import ChatMessage, LLMRequest, SamplingParams, ScriptedLLM

LLM = ScriptedLLM(seed=0)
STATE = {"served": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        die_after = int(sys.argv[2]) if len(sys.argv) > 2 else -1
        if die_after >= 0 and STATE["served"] >= die_after:
            os._exit(1)
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        request = LLMRequest(
            role="fake",
            messages=[ChatMessage(**m) for m in body["messages"]],
            response_schema=schema,
            choices=(body.get("structured_outputs") or {}).get("choice"),
            sampling=SamplingParams(seed=body.get("seed")),
        )
        reply = asyncio.run(LLM.complete(request))
        STATE["served"] += 1
        payload = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
