"""Fault-injection harness: a fork server for fast CLI runs, a reference run, the figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, tiny_run_args
from tests.e2e.regen_golden import without_timings

FAULT_RUN_ARGS = (
    "--concurrency",
    "1",
    "--train-users",
    "2",
    "--test-users",
    "1",
    "--env.max-steps",
    "4",
)
"""The scripted run every fault test plays: one episode at a time, so that a resumed run
replays exactly what an uninterrupted one does (memories seen at each episode's start)."""


@dataclass
class Figures:
    kill_points: int = 0
    kill_points_survived: int = 0
    faults_injected: int = 0
    faults_recovered: int = 0
    bad_inputs: list[tuple[str, str]] = field(default_factory=list)
    episodes_lost: int = 0
    episodes_repeated: int = 0


FIGURES = Figures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    f = FIGURES
    if not (f.kill_points or f.faults_injected or f.bad_inputs):
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault injection")
    write(
        f"kill points survived: {f.kill_points_survived}/{f.kill_points} (SIGKILL, then --resume)"
    )
    write(f"I/O faults injected: {f.faults_injected} (recovered by --resume: {f.faults_recovered})")
    write(f"bad inputs tried: {len(f.bad_inputs)}")
    write(f"episodes lost: {f.episodes_lost}; episodes repeated: {f.episodes_repeated}")
    for name, message in f.bad_inputs:
        write(f"  {name}: {message}")


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


class ForkServer:
    def __init__(self, workdir: Path, cache: Path) -> None:
        env = dict(os.environ)
        env.update(XDG_CACHE_HOME=str(cache), HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
        env.pop("BILLP_FAULTS", None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        self.workdir = workdir
        self._count = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.forkserver"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: list[str], faults: dict[str, Any] | None = None) -> Result:
        self._count += 1
        out = self.workdir / f"{self._count}.out"
        err = self.workdir / f"{self._count}.err"
        request = {"argv": argv, "faults": faults, "stdout": str(out), "stderr": str(err)}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return Result(json.loads(line)["rc"], out.read_text(), err.read_text())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def forkserver(tmp_path_factory: pytest.TempPathFactory, billp_cache: Path) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path_factory.mktemp("fork-io"), billp_cache)
    yield server
    server.close()


def run_args(out: Path, *extra: str) -> list[str]:
    return tiny_run_args(out, *FAULT_RUN_ARGS, *extra)


def run_dirs(out: Path) -> list[Path]:
    runs = out / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def memory_state(run_dir: Path) -> dict[str, Any]:
    """What a run's memories hold: per memory, its meta.json (count, committed, checksums)."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    root = Path(manifest["memory_dir"])
    state = {}
    for kind in ("reflections", "actor", "critic"):
        meta = root / kind / "meta.json"
        state[kind] = json.loads(meta.read_text()) if meta.is_file() else None
    return state


def steps_state(run_dir: Path) -> list[Any]:
    lines = (run_dir / "steps.jsonl").read_text().splitlines()
    return [without_timings(json.loads(line)) for line in lines]


@dataclass
class Reference:
    out: Path
    run_dir: Path
    episodes: bytes
    memories: dict[str, Any]
    steps: list[Any]
    trace: list[tuple[int, str, str]]


@pytest.fixture(scope="session")
def reference(forkserver: ForkServer, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """An uninterrupted run (after a warm-up that fills the caches), with its fault points."""
    warm = tmp_path_factory.mktemp("warm")
    assert forkserver.run(run_args(warm)).rc == 0
    out = tmp_path_factory.mktemp("reference")
    trace_file = out / "trace.tsv"
    result = forkserver.run(run_args(out), {"trace": str(trace_file)})
    assert result.rc == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(out)
    trace = []
    for line in trace_file.read_text().splitlines():
        number, stage, path = line.split("\t")
        trace.append((int(number), stage, path))
    # The same run again, untraced: the reference must not depend on the tracing.
    again = tmp_path_factory.mktemp("reference-again")
    assert forkserver.run(run_args(again)).rc == 0
    (again_dir,) = run_dirs(again)
    episodes = (run_dir / "episodes.jsonl").read_bytes()
    assert (again_dir / "episodes.jsonl").read_bytes() == episodes
    return Reference(out, run_dir, episodes, memory_state(run_dir), steps_state(run_dir), trace)


def fresh_copy(reference: Reference, dest: Path) -> Path:
    """A copy of the reference run directory whose manifest points at a copy of its memories."""
    run_dir = dest / "runs" / reference.run_dir.name
    shutil.copytree(reference.run_dir, run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    memory = dest / "memory" / reference.run_dir.name
    shutil.copytree(manifest["memory_dir"], memory)
    manifest["memory_dir"] = str(memory)
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return run_dir
