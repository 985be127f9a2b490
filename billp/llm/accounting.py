"""Per-role counters of LLM calls: attempts, schema failures, escalation stages, tokens, latency.

Latency percentiles use the nearest-rank method: the p-th percentile of n sorted values is
the value at 1-based rank ``ceil(p / 100 * n)`` (always an observed latency, no interpolation).
Responses served from the response cache count as calls and cache hits, and their recorded
token usage counts, but their latency is left out (it would measure the disk, not the model).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from billp.llm.messages import LLMResponse

P50 = 50.0
P95 = 95.0


def nearest_rank_percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank ``percent``-th percentile of ``values``; ``None`` when empty."""
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be within [0, 100], got {percent}")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(percent / 100 * len(ordered)), 1)
    return ordered[rank - 1]


class RoleStats(BaseModel):
    """Counters of one role."""

    calls: int = Field(default=0, description="Completed client calls (responses received).")
    attempts: int = Field(default=0, description="HTTP attempts behind those calls.")
    retries: int = Field(default=0, description="Attempts beyond the first, summed over calls.")
    schema_failures: int = Field(
        default=0, description="Replies that failed parsing or validation."
    )
    reasks: int = Field(default=0, description="Re-asks carrying a validation error.")
    repairs: int = Field(default=0, description="Values recovered by JSON repair or a repair hook.")
    fallbacks: int = Field(default=0, description="Values that came from the caller's fallback.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = Field(
        default=0, description="Prompt tokens served from the server's cache."
    )
    cache_hits: int = Field(default=0, description="Responses replayed from the response cache.")
    latencies_s: list[float] = Field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """All counters, with latency p50/p95 (nearest rank) and mean instead of the list."""
        data = self.model_dump(exclude={"latencies_s"})
        data["latency_p50_s"] = nearest_rank_percentile(self.latencies_s, P50)
        data["latency_p95_s"] = nearest_rank_percentile(self.latencies_s, P95)
        data["latency_mean_s"] = (
            sum(self.latencies_s) / len(self.latencies_s) if self.latencies_s else None
        )
        return data


COUNTER_FIELDS: frozenset[str] = frozenset(
    name for name, info in RoleStats.model_fields.items() if info.annotation is int
)
"""Names that :meth:`Accounting.count` accepts."""


class Activity(BaseModel):
    """When the run had LLM requests in flight (monotonic clock)."""

    first_request_at: float | None = Field(
        None, description="time.monotonic() when the first request went out."
    )
    last_reply_at: float | None = Field(
        None, description="time.monotonic() when the last reply came back."
    )
    busy_s: float = Field(0.0, description="Seconds with at least one request in flight.")

    @property
    def idle_share(self) -> float | None:
        """Share of the time from the first request to the last reply with none in flight:
        time the server could have been computing for this run but had nothing to do."""
        if self.first_request_at is None or self.last_reply_at is None:
            return None
        span = self.last_reply_at - self.first_request_at
        return max(0.0, 1.0 - self.busy_s / span) if span > 0 else 0.0


class Accounting:
    """Per-role :class:`RoleStats`, safe to update from several threads or tasks, and the
    run's request :class:`Activity`."""

    def __init__(self) -> None:
        self._roles: dict[str, RoleStats] = {}
        self._lock = threading.Lock()
        self._activity = Activity()
        self._in_flight = 0
        self._busy_since = 0.0

    def request_started(self) -> None:
        """A request goes out (pair with :meth:`request_ended`)."""
        now = time.monotonic()
        with self._lock:
            if self._activity.first_request_at is None:
                self._activity.first_request_at = now
            if self._in_flight == 0:
                self._busy_since = now
            self._in_flight += 1

    def request_ended(self) -> None:
        """A request came back (or failed)."""
        now = time.monotonic()
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._activity.busy_s += now - self._busy_since
            self._activity.last_reply_at = now

    def activity(self) -> Activity:
        """A copy of the request activity so far."""
        with self._lock:
            return self._activity.model_copy()

    def stats(self, role: str) -> RoleStats:
        """A copy of ``role``'s counters (zeros for a role never seen)."""
        with self._lock:
            return self._roles.get(role, RoleStats()).model_copy(deep=True)

    def _role(self, role: str) -> RoleStats:
        return self._roles.setdefault(role, RoleStats())

    def record_response(self, role: str, response: LLMResponse) -> None:
        """Count one response: call, attempts, retries, tokens, cache hit, latency."""
        with self._lock:
            stats = self._role(role)
            stats.calls += 1
            stats.attempts += response.attempts
            stats.retries += response.attempts - 1
            stats.prompt_tokens += response.usage.prompt_tokens
            stats.completion_tokens += response.usage.completion_tokens
            stats.cached_tokens += response.usage.cached_tokens
            if response.from_cache:
                stats.cache_hits += 1
            else:
                stats.latencies_s.append(response.latency_s)

    def count(self, role: str, field: str, amount: int = 1) -> None:
        """Add ``amount`` to the integer counter ``field`` of ``role``."""
        if field not in COUNTER_FIELDS:
            raise ValueError(
                f"unknown accounting counter {field!r}; expected one of {sorted(COUNTER_FIELDS)}"
            )
        with self._lock:
            stats = self._role(role)
            setattr(stats, field, getattr(stats, field) + amount)

    def roles(self) -> list[str]:
        """Roles seen so far, sorted."""
        with self._lock:
            return sorted(self._roles)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{role: RoleStats.summary()}`` for every role seen, sorted by role."""
        with self._lock:
            return {role: self._roles[role].summary() for role in sorted(self._roles)}
