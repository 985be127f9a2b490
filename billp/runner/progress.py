"""Progress of a run's phases on stderr: a rich bar on a terminal, else a line per episode."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class PlainProgress:
    """Progress as one stderr line per finished episode, for logs and pipes (no TTY)."""

    def __init__(self) -> None:
        self._tasks: dict[int, list[Any]] = {}

    def add_task(self, description: str, total: int) -> int:
        self._tasks[len(self._tasks)] = [description, 0, total, time.monotonic()]
        return len(self._tasks) - 1

    def advance(self, task_id: int) -> None:
        entry = self._tasks[task_id]
        entry[1] += 1
        elapsed = time.monotonic() - entry[3]
        print(f"{entry[0]}: {entry[1]}/{entry[2]} ({elapsed:.0f}s)", file=sys.stderr, flush=True)


RunProgress = Progress | PlainProgress
"""What :func:`progress` yields when enabled."""


@contextlib.asynccontextmanager
async def progress(enabled: bool) -> AsyncIterator[RunProgress | None]:
    """A progress display for the run (None when ``enabled`` is false)."""
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    if not console.is_terminal:
        yield PlainProgress()
        return
    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with bars:
        yield bars
