"""A server that dies mid-run: a clear error, nothing lost, and --resume completes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.e2e.conftest import REPO, cli_env, only_run_dir, run_cli, simulate_cmd

FAKE_SERVER = REPO / "tests" / "e2e" / "fake_openai_server.py"
DIE_AFTER_REQUESTS = 40
"""Past the first episode (about 30 calls with the default shortlist), well before the sixth."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_fake(port: int, cache: Path, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), str(port), *extra], env=cli_env(cache), cwd=REPO
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("fake server did not start")


def test_dead_server_then_resume(tmp_path: Path, shared_cache: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = _start_fake(port, shared_cache, str(DIE_AFTER_REQUESTS))
    try:
        cmd = simulate_cmd(
            tmp_path,
            "--concurrency",
            "1",
            "--llm.backend",
            "openai",
            "--llm.base-url",
            url,
            "--llm.max-retries",
            "2",
            # Seeded scripted replies: the episodes (and so where the server dies) do not
            # change when a prompt template is edited.
            "--llm.send-seed",
            "true",
            "--llm.backoff-s",
            "0.01",
            "--llm.timeout-s",
            "5",
        )
        result = run_cli(cmd, shared_cache, timeout=120)
    finally:
        server.kill()
        server.wait()
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"127.0.0.1:{port}" in result.stderr and "--resume" in result.stderr
    run_dir = only_run_dir(tmp_path)
    before = (run_dir / "episodes.jsonl").read_text().splitlines()
    assert 1 <= len(before) < 6

    server = _start_fake(port, shared_cache)
    try:
        resumed = run_cli(
            [sys.executable, "-m", "billp.simulate", "--resume", str(run_dir)],
            shared_cache,
            timeout=120,
        )
    finally:
        server.kill()
        server.wait()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = (run_dir / "episodes.jsonl").read_text().splitlines()
    assert after[: len(before)] == before
    keys = Counter(json.loads(line)["key"] for line in after)
    assert len(keys) == 6 and set(keys.values()) == {1}
