"""billp.evaluation.executors: the executor flags, the environment a Ray run inherits, the task
body."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from billp.evaluation import executors
from billp.evaluation.executors import (
    RAY_INSTALL_HINT,
    LocalExecutor,
    add_executor_arguments,
    executor_problem,
    forwarded_env,
    make_executor,
    on_cluster,
    ray_cell,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_executor_arguments(parser)
    return parser.parse_args(argv)


def test_local_is_the_default_and_keeps_jobs() -> None:
    args = parse()
    assert args.executor == "local" and executor_problem(args) is None
    executor = make_executor(args.executor)
    assert isinstance(executor, LocalExecutor) and executor.width(3, 10) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ray-num-cpus", "2"], "--ray-num-cpus need --executor ray"),
        (["--executor", "ray", "--ray-num-cpus", "0"], "at least 1"),
        (["--executor", "ray", "--ray-address", "auto", "--ray-num-cpus", "2"], "local Ray"),
    ],
)
def test_contradictory_flags(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", ModuleType("ray"))
    problem = executor_problem(parse(*argv))
    assert problem is not None and message in problem


def test_missing_ray_tells_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, installed or not
    problem = executor_problem(parse("--executor", "ray"))
    assert problem is not None and RAY_INSTALL_HINT in problem
    assert executor_problem(parse()) is None  # the local executor never imports Ray


def test_only_an_address_means_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --ray-address the sweep starts its own local instance, whatever RAY_ADDRESS."""
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert not on_cluster(parse("--executor", "ray")) and not on_cluster(parse())
    assert on_cluster(parse("--executor", "ray", "--ray-address", "auto"))


def test_only_billp_and_offline_settings_are_forwarded() -> None:
    environ = {
        "BILLP_RL_CHECKPOINTS": "/shared/rl",
        "HF_HUB_OFFLINE": "1",
        "PYTHONHASHSEED": "0",
        "OPENAI_API_KEY": "secret",
        "PATH": "/usr/bin",
    }
    assert forwarded_env(environ) == {
        "BILLP_RL_CHECKPOINTS": "/shared/rl",
        "HF_HUB_OFFLINE": "1",
        "PYTHONHASHSEED": "0",
    }


def test_task_body_reports_exit_status_stderr_and_node(tmp_path: Path) -> None:
    """A node without the driver's folder runs in its own; a config error comes back."""
    done = ray_cell(["--env.max-steps", "0"], 120, str(tmp_path / "absent"), {"BILLP_X": "1"})
    assert done.returncode == 2 and not done.timed_out and done.error is None
    assert "env.max_steps" in done.stderr and done.node == socket.gethostname()


def test_task_body_kills_a_run_past_its_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    monkeypatch.setattr(executors, "simulate_command", lambda args: sleeper)
    started = time.monotonic()
    done = executors.wait_interruptibly([], 0.5)
    assert done.timed_out and done.returncode is None
    assert time.monotonic() - started < 10
