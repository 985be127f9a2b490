"""Accounting: per-role counters and nearest-rank latency percentiles."""

from __future__ import annotations

import pytest

from billp.llm import Accounting, LLMResponse, RoleStats, TokenUsage, nearest_rank_percentile


def response(latency: float, attempts: int = 1, from_cache: bool = False) -> LLMResponse:
    return LLMResponse(
        text="x",
        usage=TokenUsage(prompt_tokens=100, completion_tokens=5, cached_tokens=60),
        latency_s=latency,
        model="m",
        attempts=attempts,
        from_cache=from_cache,
    )


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(20, 0, -1)]  # 20..1, unsorted on purpose
    assert nearest_rank_percentile(values, 50) == 10.0
    assert nearest_rank_percentile(values, 95) == 19.0
    assert nearest_rank_percentile(values, 100) == 20.0
    assert nearest_rank_percentile(values, 0) == 1.0
    assert nearest_rank_percentile([3.5], 95) == 3.5
    assert nearest_rank_percentile([], 50) is None
    with pytest.raises(ValueError, match="percent"):
        nearest_rank_percentile(values, 101)


def test_record_response_counts_everything() -> None:
    accounting = Accounting()
    accounting.record_response("actor", response(0.5, attempts=3))
    accounting.record_response("actor", response(1.5))
    accounting.record_response("actor", response(9.0, from_cache=True))
    stats = accounting.stats("actor")
    assert stats.calls == 3 and stats.attempts == 5 and stats.retries == 2
    assert stats.prompt_tokens == 300 and stats.completion_tokens == 15
    assert stats.cached_tokens == 180 and stats.cache_hits == 1
    assert stats.latencies_s == [0.5, 1.5]  # cache hits do not measure the model


def test_count_and_snapshot() -> None:
    accounting = Accounting()
    accounting.count("planner", "reasks")
    accounting.count("planner", "schema_failures", 2)
    accounting.record_response("critic", response(2.0))
    snapshot = accounting.snapshot()
    assert list(snapshot) == ["critic", "planner"]
    assert snapshot["planner"]["reasks"] == 1 and snapshot["planner"]["schema_failures"] == 2
    assert snapshot["planner"]["latency_p50_s"] is None
    assert snapshot["critic"]["latency_p50_s"] == 2.0
    assert "latencies_s" not in snapshot["critic"]
    assert accounting.roles() == ["critic", "planner"]


def test_count_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown accounting counter 'reask'"):
        Accounting().count("actor", "reask")
    with pytest.raises(ValueError, match="latencies_s"):
        Accounting().count("actor", "latencies_s")


def test_summary_percentiles() -> None:
    stats = RoleStats(calls=4, latencies_s=[4.0, 1.0, 3.0, 2.0])
    summary = stats.summary()
    assert summary["calls"] == 4
    assert summary["latency_p50_s"] == 2.0 and summary["latency_p95_s"] == 4.0
    assert summary["latency_mean_s"] == 2.5


def test_stats_is_a_copy() -> None:
    accounting = Accounting()
    accounting.stats("actor").calls = 99
    assert accounting.stats("actor").calls == 0
