"""SIGKILL a run midway, resume it, and lose or repeat no episode."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.e2e.conftest import REPO, cli_env, only_run_dir, run_cli, simulate_cmd
from tests.signals import default_signals

KILL_AFTER_EPISODES = 3
TOTAL = 8
POLL_S = 0.05
DEADLINE_S = 240


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [line for line in path.read_text().splitlines() if line.endswith("}")]


def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path: Path, shared_cache: Path) -> None:
    cmd = simulate_cmd(
        tmp_path,
        "--train-users",
        "4",
        "--test-users",
        "4",
        "--llm.scripted-latency-s",
        "0.05",
    )
    proc = subprocess.Popen(
        cmd,
        env=cli_env(shared_cache),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    deadline = time.monotonic() + DEADLINE_S
    episodes_path: Path | None = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            runs = list((tmp_path / "runs").glob("*/episodes.jsonl"))
            if runs and len(_lines(runs[0])) >= KILL_AFTER_EPISODES:
                episodes_path = runs[0]
                break
            time.sleep(POLL_S)
        assert proc.poll() is None, (
            f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert episodes_path is not None
    before = _lines(episodes_path)
    assert KILL_AFTER_EPISODES <= len(before) < TOTAL

    run_dir = only_run_dir(tmp_path)
    result = run_cli(
        [sys.executable, "-m", "billp.simulate", "--resume", str(run_dir)], shared_cache
    )
    assert result.returncode == 0, result.stderr[-3000:]

    after = _lines(run_dir / "episodes.jsonl")
    assert after[: len(before)] == before, "finished episodes must stay as they were"
    records = [json.loads(line) for line in after]
    keys = Counter(r["key"] for r in records)
    expected = {f"train-{i:04d}" for i in range(4)} | {f"test-{i:04d}" for i in range(4)}
    assert set(keys) == expected and max(keys.values()) == 1

    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    per_episode = Counter(s["episode"] for s in steps if s["step"] is not None)
    assert per_episode == Counter({r["key"]: r["steps"] for r in records})

    manifest = json.loads((run_dir / "manifest.json").read_text())
    meta = json.loads((Path(manifest["memory_dir"]) / "reflections" / "meta.json").read_text())
    assert set(meta["committed"]) == expected
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["train"]["episodes"] == 4 and summary["test"]["episodes"] == 4
    # Throughput counts only what this invocation played, not the recovered episodes.
    assert summary["throughput"]["episodes_played"] == 8 - len(before)


def test_ctrl_c_keeps_finished_episodes_and_memories(tmp_path: Path, shared_cache: Path) -> None:
    # Waves of one: each finished episode's memories are committed at once.
    cmd = simulate_cmd(
        tmp_path,
        "--train-users",
        "4",
        "--test-users",
        "2",
        "--llm.scripted-latency-s",
        "0.05",
        "--wave-size",
        "1",
    )
    proc = subprocess.Popen(
        cmd,
        env=cli_env(shared_cache),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            runs = list((tmp_path / "runs").glob("*/episodes.jsonl"))
            if runs and len(_lines(runs[0])) >= 1:
                break
            time.sleep(POLL_S)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "--resume" in stderr
    run_dir = only_run_dir(tmp_path)
    records = [json.loads(line) for line in _lines(run_dir / "episodes.jsonl")]
    assert records, "the finished episode is on disk"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    meta = json.loads((Path(manifest["memory_dir"]) / "actor" / "meta.json").read_text())
    assert set(meta["committed"]) == {r["key"] for r in records}
