"""Fixtures for evaluation tests: hand-built episodes and tiny scripted runs made by the CLI."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from billp.evaluation.metrics import ItemFeatures
from billp.records import EpisodeRecord

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "e2e" / "tiny.toml"
TINY_TEST_USERS = 6
PROMPT_EDIT = " Prefer genres the user has not seen recently."
CLI_TIMEOUT_S = 300


def load_eval_script(name: str) -> ModuleType:
    """Import ``eval/<name>.py`` (a script, not a package module) as module ``name``.

    ``eval/`` goes on ``sys.path`` as when the script runs, so scripts that import each
    other (``learning_curve`` uses ``paper_table``) share one module object."""
    eval_dir = str(REPO / "eval")
    if eval_dir not in sys.path:
        sys.path.insert(0, eval_dir)
    return importlib.import_module(name)


def make_episode(
    key: str,
    items: Sequence[int],
    rewards: Sequence[float],
    *,
    terminated: bool,
    truncated: bool = False,
    quit_reason: str | None = None,
    user_id: int = 0,
    phase: str = "test",
    index: int = 0,
    seed: int = 0,
) -> EpisodeRecord:
    """An episode line as the runner writes it: Len excludes the quitting step."""
    length = len(items) - (1 if terminated else 0)
    return EpisodeRecord(
        key=key,
        phase=phase,
        index=index,
        user_id=user_id,
        seed=seed,
        items=list(items),
        rewards=list(rewards),
        steps=len(items),
        length=length,
        total_reward=float(sum(rewards[:length])),
        terminated=terminated,
        truncated=truncated,
        quit_reason=quit_reason if terminated else None,
        fallbacks=0,
    )


@pytest.fixture()
def features() -> ItemFeatures:
    """Six items: 0 {A}, 1 {B}, 2 {A,B}, 3 {C}, 4 {} (no genre), 5 {A}; popularity 10..60."""
    return ItemFeatures.from_genre_sets(
        [{"A"}, {"B"}, {"A", "B"}, {"C"}, set(), {"A"}],
        [10, 20, 30, 40, 50, 60],
        labels=[f"item{i}" for i in range(6)],
    )


def cli_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(cache)
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("PYTHONHASHSEED", "0")
    env.pop("COLUMNS", None)
    return env


def run_cli(
    args: list[str], cache: Path, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=cli_env(cache),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def simulate(out: Path, cache: Path, *extra: str) -> Path:
    """One tiny scripted run into ``out/runs``; returns its run directory."""
    before = set((out / "runs").iterdir()) if (out / "runs").is_dir() else set()
    done = run_cli(
        [
            "-m",
            "billp.simulate",
            "--config",
            str(TINY),
            "--test-users",
            str(TINY_TEST_USERS),
            "--output-dir",
            str(out / "runs"),
            "--memory.dir",
            str(out / "memory"),
            *extra,
        ],
        cache,
    )
    assert done.returncode == 0, done.stderr
    (new,) = set((out / "runs").iterdir()) - before
    return new


@pytest.fixture(scope="session")
def eval_cache(billp_cache: Path) -> Path:
    """The session's billp cache (``tests/conftest.py``), for the evaluation CLI runs."""
    return billp_cache


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory, eval_cache: Path) -> tuple[Path, Path]:
    """Two tiny BiLLP runs on the same users and seeds; B's planner template is edited."""
    out = tmp_path_factory.mktemp("eval-runs")
    prompts = out / "prompts-b"
    shutil.copytree(REPO / "prompts", prompts)
    planner = prompts / "planner.j2"
    lines = planner.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = lines[0].rstrip("\n") + PROMPT_EDIT + "\n"
    planner.write_text("".join(lines), encoding="utf-8")
    run_a = simulate(out / "a", eval_cache)
    run_b = simulate(out / "b", eval_cache, "--prompts-dir", str(prompts))
    return run_a, run_b
