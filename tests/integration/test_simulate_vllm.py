"""The real CLI boots a real vLLM server, plays real episodes under its JSON schemas, and
leaves no process behind. The suite boots vLLM only here: one server start is about a
minute of CPU on two cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from billp.agents.billp_traces import BillpStepTrace
from billp.records import StepRecord, read_steps
from tests.integration.conftest import require_vllm

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "e2e" / "tiny.toml"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.integration
def test_simulate_on_a_real_vllm_server(tiny_model_dir: Path, tmp_path: Path) -> None:
    require_vllm()
    env = dict(os.environ, HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    cmd = [
        sys.executable, "-m", "billp.simulate",
        "--config", str(TINY),
        "--output-dir", str(tmp_path / "runs"),
        "--memory.dir", str(tmp_path / "memory"),
        "--llm.backend", "vllm",
        "--llm.model", str(tiny_model_dir),
        "--llm.server.kv-cache-gib", "1",
        "--llm.server.max-model-len", "4096",
        "--llm.max-tokens", "48",
        "--llm.cache", "record",
        "--agent.shortlist-size", "5",
        # Several users per phase, two in flight: a replay must not depend on which
        # concurrent episode finished first (waves commit in episode order).
        "--train-users", "2",
        "--test-users", "2",
        "--concurrency", "2",
        "--env.max-steps", "3",
    ]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-4000:]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    records = [json.loads(x) for x in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["train", "train", "test", "test"]
    lines = read_steps(run_dir)
    calls = [c for s in lines for c in s.calls]
    assert calls and all(c.prompt_tokens > 0 for c in calls), "token usage comes from vLLM"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["llm"]["actor"]["calls"] >= 2
    # The server honours the JSON schemas: even a random model's replies parse (no schema
    # failure, repair or fallback) and every pick is one of its step's shortlisted ids.
    for role, stats in summary["llm"].items():
        assert stats["schema_failures"] == stats["repairs"] == stats["fallbacks"] == 0, role
    played = [s for s in lines if isinstance(s, StepRecord)]  # the rest: episode ends
    assert len(played) == sum(r["steps"] for r in records)
    for step in played:
        assert isinstance(step.trace, BillpStepTrace) and step.trace.choice is not None
        assert step.action in step.trace.shortlist and step.trace.choice.item_id == step.action
    # Token counters come from the server's Prometheus metrics.
    server = summary["server"]
    assert server["prompt_tokens"] >= sum(c.prompt_tokens for c in calls)
    assert server["generation_tokens"] >= 1
    assert (run_dir / "vllm_server.log").stat().st_size > 0
    assert not _processes_mentioning(str(tiny_model_dir)), "the vLLM server outlived the run"

    # The recorded replies replay the run byte for byte with no server at all.
    replay = subprocess.run(
        [
            *cmd,
            "--llm.cache",
            "replay",
            "--llm.cache-dir",
            str(run_dir / "llm_cache"),
            "--output-dir",
            str(tmp_path / "replay"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert replay.returncode == 0, replay.stderr[-4000:]
    (replayed,) = list((tmp_path / "replay").iterdir())
    assert (replayed / "episodes.jsonl").read_bytes() == (run_dir / "episodes.jsonl").read_bytes()
    assert not (replayed / "vllm_server.log").exists()
