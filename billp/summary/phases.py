"""Where a run's wall time goes: start-up, server, phases, and the LLM engine's idle share.

``summary.json``'s ``phases`` records, in seconds: ``prepare_s`` (data and input checks,
before the run directory), ``world_load_s`` (building the world, the LE's model for one; it
runs while the server starts), ``server_start_s`` (starting the LLM server, when billp
starts one), ``train_s`` and ``test_s`` (playing each phase), ``to_first_request_s`` (from the
process's start to its first LLM request) and ``total_s`` (process start to the summary), and
``engine_idle_share``: the share of the time from the first LLM request to the last reply with
no request in flight (:class:`billp.llm.accounting.Activity`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def process_started_at() -> float:
    """``time.monotonic()`` at this process's start (Linux: from ``/proc``; elsewhere the
    first call of this function)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # The command may hold spaces and parentheses: the fields after its last ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            now_since_boot = float(uptime.read().split()[0])
        started_since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return time.monotonic() - max(now_since_boot - started_since_boot, 0.0)
    except (OSError, ValueError, IndexError):
        return _FIRST_CALL


_FIRST_CALL = time.monotonic()


class PhaseClock:
    """Named durations of a run, in the order they were timed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as ``<name>_s`` (added to an earlier block of the same name)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - started)

    def add(self, name: str, seconds: float) -> None:
        """Record ``<name>_s`` directly."""
        key = f"{name}_s"
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def summary(
        self, first_request_at: float | None, idle_share: float | None
    ) -> dict[str, float | None]:
        """The ``phases`` block of ``summary.json`` (seconds rounded to milliseconds)."""
        started = process_started_at()
        found: dict[str, float | None] = {k: round(v, 3) for k, v in self.seconds.items()}
        found["to_first_request_s"] = (
            None if first_request_at is None else round(first_request_at - started, 3)
        )
        found["total_s"] = round(time.monotonic() - started, 3)
        found["engine_idle_share"] = None if idle_share is None else round(idle_share, 4)
        return found
