"""Budget, phases and child processes of eval/gpu_throughput.py: each phase's time-out cut to
what is left of the script's budget, children run in their own session and stopped with
SIGINT then SIGKILL, and the simulate child's figures from its ``summary.json`` or, after a
time-out, from its finished episodes and the server's /metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
"""The checkout the children run in and import first."""
INTERRUPT_GRACE_S = 10.0
"""After a time-out, seconds between SIGINT (finished episodes are kept) and SIGKILL."""
STOP_RESERVE_S = 30.0
"""Kept back from every phase's time-out: a timed-out child's grace, stopping the server
(its SIGTERM grace is 15 s) and writing the results."""
MIN_PHASE_S = 10.0
"""A phase that would get less than this is skipped."""
OUTPUT_TAIL_CHARS = 3000
SECONDS_PER_HOUR = 3600.0


@dataclass
class Phase:
    """One timed part of the benchmark."""

    name: str
    status: str = "skipped"
    """ok, timed out, failed or skipped."""
    seconds: float = 0.0
    timeout_s: float | None = None
    detail: str = ""


@dataclass
class Budget:
    """The script's deadline; each phase's time-out is cut to what is left of it."""

    total_s: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        """Seconds until the deadline."""
        return self.total_s - (time.monotonic() - self.started)

    def timeout(self, wanted_s: float) -> float | None:
        """``wanted_s``, cut to the budget left after the stop reserve; ``None``: skip."""
        allowed = min(wanted_s, self.left() - STOP_RESERVE_S)
        return allowed if allowed >= MIN_PHASE_S else None


def child_env() -> dict[str, str]:
    """Offline, and this checkout first on the module path."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _interruptible() -> None:
    """``preexec_fn``: SIGINT back to its default in the child. A shell starting this script in
    the background (``cmd &``, ``nohup``) sets SIGINT to ignored, and children inherit that;
    Python then installs no KeyboardInterrupt handler and the time-out's SIGINT does nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_with_timeout(
    command: Sequence[str], timeout_s: float, log_path: Path
) -> tuple[int | None, float, str]:
    """Run ``command`` in its own session; after ``timeout_s`` SIGINT it, later SIGKILL.

    Returns the exit code (``None`` after a time-out), the wall seconds and the output's tail.
    """
    started = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=REPO,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_interruptible,
        )
        code: int | None
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    wall = time.monotonic() - started
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-OUTPUT_TAIL_CHARS:]
    return code, wall, tail


def figures_from_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Users/hour, token counts and tokens/s from a ``summary.json``.

    The rates are over ``throughput.wall_s``: the run itself, after the data and the world
    are loaded. ``server`` (vLLM's /metrics over the run) is copied where present.
    """
    speed = summary.get("throughput") or {}
    wall = float(speed.get("wall_s") or 0.0)
    roles = summary.get("llm") or {}

    def total(key: str) -> int:
        return int(sum(stats.get(key, 0) for stats in roles.values()))

    prompt, completion = total("prompt_tokens"), total("completion_tokens")
    figures: dict[str, Any] = {
        "source": "summary.json",
        "episodes": int(speed.get("episodes_played") or 0),
        "wall_s": wall,
        "users_per_hour": float(speed.get("users_per_hour") or 0.0),
        "calls": total("calls"),
        "reasks": total("reasks"),
        "repairs": total("repairs"),
        "fallbacks": total("fallbacks"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cached_tokens": total("cached_tokens"),
        "prompt_tokens_per_s": prompt / wall if wall > 0 else 0.0,
        "completion_tokens_per_s": completion / wall if wall > 0 else 0.0,
        "tokens_per_s": (prompt + completion) / wall if wall > 0 else 0.0,
    }
    if summary.get("server"):
        figures["server"] = dict(summary["server"])
    return figures


def partial_figures(
    run_dir: Path | None, wall_s: float, server: Mapping[str, float] | None
) -> dict[str, Any]:
    """Figures of a run stopped before its ``summary.json``: finished episodes, and tokens from
    the server's /metrics, over the simulate process's whole wall time (loading included)."""
    episodes = 0
    if run_dir is not None and (run_dir / "episodes.jsonl").is_file():
        lines = (run_dir / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
        episodes = sum(1 for line in lines if line.strip())
    prompt = float((server or {}).get("prompt_tokens", 0.0))
    completion = float((server or {}).get("generation_tokens", 0.0))
    figures: dict[str, Any] = {
        "source": "partial: episodes.jsonl and the server's /metrics",
        "episodes": episodes,
        "wall_s": wall_s,
        "users_per_hour": episodes * SECONDS_PER_HOUR / wall_s if wall_s > 0 else 0.0,
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "prompt_tokens_per_s": prompt / wall_s if wall_s > 0 else 0.0,
        "completion_tokens_per_s": completion / wall_s if wall_s > 0 else 0.0,
        "tokens_per_s": (prompt + completion) / wall_s if wall_s > 0 else 0.0,
    }
    if server:
        figures["server"] = dict(server)
    return figures


def find_run_dir(runs: Path) -> Path | None:
    """The one run directory the simulate child made under ``runs``."""
    found = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    return found[-1] if found else None
