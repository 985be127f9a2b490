"""Record/replay store of LLM responses on disk, and the client wrapper that uses it.

Each response lives in ``<directory>/<key[:2]>/<key>.json``, written atomically (temporary
file in the same folder, fsync, ``os.replace``). The key is the sha256 of the canonical JSON
of (model, messages, response_schema, sampling, and choices when a request has them); the
record holds that request (plus the role
and schema name, for reading) and the response. Nothing secret is ever part of a request
(API keys live only in the HTTP client's headers), so nothing secret reaches the files.

Modes: ``off`` passes every call through; ``record`` calls the wrapped client and stores
every reply (overwriting); ``replay`` answers only from the store, and a miss raises
:class:`CacheMissError` naming the key and role.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from billp.common.atomic_io import write_text_atomic
from billp.llm.client import LLMClient, LLMError
from billp.llm.messages import LLMRequest, LLMResponse

CacheMode = Literal["off", "record", "replay"]
CACHE_MODES: tuple[str, ...] = ("off", "record", "replay")
RECORD_VERSION = 1
"""Format version written into every record."""
SHARD_CHARS = 2
"""Leading hex characters of the key that name the shard folder."""


class CacheMissError(LLMError):
    """Replay mode found no stored response for a request."""


class CacheCorruptError(LLMError):
    """A stored record cannot be read (names the file)."""


class CachedRequest(BaseModel):
    """The stored description of a request."""

    role: str
    model: str | None
    messages: list[dict[str, str]]
    response_schema: dict[str, Any] | None
    schema_name: str
    sampling: dict[str, Any]
    choices: list[str] | None = None


class CacheRecord(BaseModel):
    """One file of the store."""

    version: int = RECORD_VERSION
    key: str
    request: CachedRequest
    response: LLMResponse


def cache_key(request: LLMRequest, default_model: str | None = None) -> str:
    """sha256 hex of canonical JSON of (model, messages, response_schema, sampling), with the
    choices of a choice-constrained request (absent otherwise, so older keys stay valid)."""
    material: dict[str, Any] = {
        "model": request.model or default_model,
        "messages": [message.model_dump() for message in request.messages],
        "response_schema": request.response_schema,
        "sampling": request.sampling.model_dump(),
    }
    if request.choices is not None:
        material["choices"] = request.choices
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """The on-disk store."""

    def __init__(self, directory: Path, mode: CacheMode) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode must be one of {CACHE_MODES}, got {mode!r}")
        self.directory = Path(directory)
        self.mode: CacheMode = mode
        if mode == "replay" and not self.directory.is_dir():
            raise CacheMissError(
                f"replay cache folder {self.directory} does not exist; record it first"
            )

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.directory)!r}, mode={self.mode!r})"

    def path_of(self, key: str) -> Path:
        """The file that holds ``key``."""
        return self.directory / key[:SHARD_CHARS] / f"{key}.json"

    def get(self, key: str) -> CacheRecord | None:
        """The stored record of ``key``, or None if absent."""
        path = self.path_of(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            record = CacheRecord.model_validate_json(text)
        except ValidationError as exc:
            raise CacheCorruptError(f"cache record {path} is unreadable: {exc}") from None
        if record.key != key:
            raise CacheCorruptError(f"cache record {path} holds key {record.key}, not {key}")
        return record

    def put(self, key: str, request: LLMRequest, response: LLMResponse, model: str | None) -> Path:
        """Store ``response`` for ``request`` under ``key``; returns the file written."""
        record = CacheRecord(
            key=key,
            request=CachedRequest(
                role=request.role,
                model=request.model or model,
                messages=[message.model_dump() for message in request.messages],
                response_schema=request.response_schema,
                schema_name=request.schema_name,
                sampling=request.sampling.model_dump(),
                choices=request.choices,
            ),
            response=response.model_copy(update={"from_cache": False}),
        )
        path = self.path_of(key)
        write_text_atomic(path, record.model_dump_json(indent=1))
        return path

    def __len__(self) -> int:
        if not self.directory.is_dir():
            return 0
        return sum(1 for _ in self.directory.glob(f"{'?' * SHARD_CHARS}/*.json"))


class CachingClient:
    """An :class:`LLMClient` that records to or replays from a :class:`ResponseCache`."""

    def __init__(self, inner: LLMClient, cache: ResponseCache, model: str | None = None) -> None:
        """``model``: the inner client's default model, used in keys of requests naming none
        (defaults to ``inner.model`` when the client has that attribute)."""
        self.inner = inner
        self.cache = cache
        default = getattr(inner, "model", None)
        self.model = model if model is not None else default if isinstance(default, str) else None

    def __repr__(self) -> str:
        return f"CachingClient({self.inner!r}, {self.cache!r})"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer per the cache mode (see the module docstring)."""
        if self.cache.mode == "off":
            return await self.inner.complete(request)
        key = cache_key(request, self.model)
        if self.cache.mode == "replay":
            record = self.cache.get(key)
            if record is None:
                raise CacheMissError(
                    f"no cached response for role {request.role!r} under key {key} in "
                    f"{self.cache.directory} (replay mode); record this run first"
                )
            return record.response.model_copy(update={"from_cache": True})
        response = await self.inner.complete(request)
        self.cache.put(key, request, response, self.model)
        return response

    async def aclose(self) -> None:
        """Close the wrapped client."""
        await self.inner.aclose()
