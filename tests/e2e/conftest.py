"""Helpers for end-to-end tests that run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "e2e" / "tiny.toml"


@pytest.fixture(scope="session")
def shared_cache(billp_cache: Path) -> Path:
    """The session's billp cache (``tests/conftest.py``), for the e2e CLI runs."""
    return billp_cache


def cli_env(cache: Path, environment: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(environment or {})}
    env["XDG_CACHE_HOME"] = str(cache)
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def tiny_run_args(out: Path, *extra: str) -> list[str]:
    """Simulate flags of a tiny run whose run and memory folders live under ``out``."""
    return [
        "--config",
        str(TINY),
        "--output-dir",
        str(out / "runs"),
        "--memory.dir",
        str(out / "memory"),
        *extra,
    ]


def simulate_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "billp.simulate", *tiny_run_args(out, *extra)]


def run_cli(
    cmd: list[str],
    cache: Path,
    timeout: float = 300,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with ``cache`` as its cache folder and ``environment`` added."""
    return subprocess.run(
        cmd,
        env=cli_env(cache, environment),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def only_run_dir(out: Path) -> Path:
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]
