"""Where the eval sweeps' simulate runs execute: local subprocesses or Ray tasks.

``eval/paper_table.py`` and ``eval/learning_curve.py`` decide which runs to make (and which
complete runs to reuse or interrupted ones to resume) and read the run directories
afterwards; an executor only runs one ``python -m billp.simulate ARGS`` command and reports
how it ended:

- :class:`LocalExecutor` (the default): a subprocess of this Python, as the scripts always
  did; ``--jobs`` of them at once.
- :class:`RayExecutor`: each run is a Ray task (``num_cpus`` per run) that starts the same
  subprocess on whichever node Ray schedules it, with that node's Python. Every node needs
  billp installed, with its datasets and models available offline, and the runs' output
  folder on a filesystem every node (and the driver) mounts at the same path. All runs are
  submitted at once; Ray's scheduler bounds how many run by the cluster's CPUs.

Ray is the optional extra ``billp[ray]``; it is imported only when a Ray executor is made.
This module imports nothing else from billp, so a Ray worker that unpickles the task only
imports billp's top package and this file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Protocol

EXECUTORS: tuple[str, ...] = ("local", "ray")
POLL_S = 1.0
"""How often a Ray task's wait for its run wakes up (to notice a cancellation)."""
RAY_INSTALL_HINT = "pip install 'billp[ray]'"
FORWARDED_ENV_PREFIXES: tuple[str, ...] = ("BILLP_",)
FORWARDED_ENV_NAMES: frozenset[str] = frozenset(
    {"PYTHONHASHSEED", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}
)
"""Driver environment variables a Ray run gets too (when set): billp's own settings and the
ones that keep a run offline and reproducible. Nothing else is forwarded (secrets such as
the LLM API key must be in each node's environment when ``ray start`` runs there)."""


class ExecutorUnavailableError(RuntimeError):
    """The executor asked for cannot be made (Ray not installed); the message says why."""


@dataclass(frozen=True)
class Finished:
    """How one simulate command ended.

    ``returncode`` is None when the command did not finish: it ran past its time-out
    (``timed_out``) or the executor lost it (``error`` says how, e.g. a Ray node died).
    ``stderr`` is the command's captured standard error; ``node`` the host it ran on
    (empty for local runs).
    """

    returncode: int | None
    stderr: str = ""
    timed_out: bool = False
    error: str | None = None
    node: str = ""


def simulate_command(args: list[str]) -> list[str]:
    """``python -m billp.simulate ARGS`` with this process's Python."""
    return [sys.executable, "-m", "billp.simulate", *args]


def run_simulate(args: list[str], timeout_s: float | None) -> Finished:
    """Run one simulate command here and wait for it (killed after ``timeout_s``): the
    subprocess the sweep scripts always ran."""
    try:
        done = subprocess.run(
            simulate_command(args), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return Finished(None, timed_out=True)
    return Finished(done.returncode, done.stderr)


def wait_interruptibly(
    args: list[str],
    timeout_s: float | None,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """:func:`run_simulate` that wakes up every ``POLL_S`` seconds while it waits.

    A cancelled Ray task gets KeyboardInterrupt only when Python code runs again; a
    ``subprocess.run`` without a time-out sleeps in one system call until the child ends.
    Waking up lets the interrupt arrive, and any exception kills the child.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with subprocess.Popen(
        simulate_command(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
    ) as process:
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    process.kill()
                    process.communicate()
                    return Finished(None, timed_out=True)
                step = POLL_S if left is None else min(POLL_S, left)
                try:
                    _, stderr = process.communicate(timeout=step)
                except subprocess.TimeoutExpired:
                    continue
                return Finished(process.returncode, stderr)
        except BaseException:
            process.kill()
            raise


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default ``os.environ``) a Ray run inherits."""
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        if name in FORWARDED_ENV_NAMES or name.startswith(FORWARDED_ENV_PREFIXES)
    }


def ray_cell(
    args: list[str], timeout_s: float | None, cwd: str, env: Mapping[str, str]
) -> Finished:
    """The body of a Ray task: :func:`run_simulate` on the worker, in the driver's folder.

    ``cwd`` is the driver's working directory (relative paths in ``args`` mean the same on
    a node with the same checkout path); a node without that folder runs in its own. ``env``
    is added to the worker's environment (:func:`forwarded_env`).
    """
    workdir = cwd if os.path.isdir(cwd) else None
    done = wait_interruptibly(args, timeout_s, cwd=workdir, env={**os.environ, **env})
    return replace(done, node=socket.gethostname())


class Executor(Protocol):
    """Runs simulate commands; one call per run, from any thread."""

    name: str
    missing_run_hint: str
    """Added to the error when a command succeeded but its run directory is not found."""

    def width(self, jobs: int, runs: int) -> int:
        """Threads the sweep uses to keep ``runs`` runs going, given ``--jobs``."""
        ...

    def run(self, args: list[str], timeout_s: float | None) -> Finished:
        """Run ``python -m billp.simulate ARGS`` and wait for it."""
        ...

    def cancel(self) -> None:
        """Stop every run in flight and refuse new ones (after Ctrl-C)."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a Ray instance it started)."""
        ...


class LocalExecutor:
    """Subprocesses of this Python, ``--jobs`` at a time (the scripts' behaviour so far)."""

    name = "local"
    missing_run_hint = ""

    def width(self, jobs: int, runs: int) -> int:
        return jobs

    def run(self, args: list[str], timeout_s: float | None) -> Finished:
        return run_simulate(args, timeout_s)

    def cancel(self) -> None:
        """Nothing to do: Ctrl-C reaches the child processes through the terminal."""

    def close(self) -> None:
        pass


def import_ray() -> ModuleType:
    """The ``ray`` module, or :class:`ExecutorUnavailableError` telling how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ExecutorUnavailableError(
            f"--executor ray needs Ray, which is not installed ({exc}); "
            f"install it with: {RAY_INSTALL_HINT}"
        ) from exc
    return ray


class RayExecutor:
    """Each run a Ray task on a local Ray instance (``address`` None) or a cluster.

    ``address``: None starts a new local instance with ``num_cpus`` CPUs (default: all of
    this machine's), even where ``ray start`` runs or ``RAY_ADDRESS`` is set; ``"auto"``
    joins the cluster this machine is part of (``ray start``), and ``"ray://HOST:10001"``
    joins a remote one through Ray Client. An already initialised Ray (``ray.init`` called
    by the caller) is used as it is and left running.

    Each task asks for ``cpus_per_run`` CPUs and is not retried by Ray: a run lost with its
    node is reported failed, and the next invocation of the script resumes it.
    """

    name = "ray"
    missing_run_hint = (
        " (with --executor ray, --out-dir must be on a filesystem that every Ray node and "
        "this machine mount at the same path)"
    )

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        cpus_per_run: float = 1.0,
        ray: ModuleType | None = None,
    ) -> None:
        if address is not None and num_cpus is not None:
            raise ValueError("num_cpus sizes a local Ray instance; not given with an address")
        self._ray = import_ray() if ray is None else ray
        self._owned = not self._ray.is_initialized()
        if self._owned:
            init: dict[str, Any] = {"address": "local" if address is None else address}
            if num_cpus is not None:
                init["num_cpus"] = num_cpus
            self._ray.init(**init)
        self._task = self._ray.remote(num_cpus=cpus_per_run, max_retries=0)(ray_cell)
        self._cwd = os.getcwd()
        self._env = forwarded_env()
        self._lock = threading.Lock()
        self._in_flight: set[Any] = set()
        self._cancelled = False

    def width(self, jobs: int, runs: int) -> int:
        return max(1, runs)

    def run(self, args: list[str], timeout_s: float | None) -> Finished:
        ray = self._ray
        with self._lock:
            if self._cancelled:
                return Finished(None, error="cancelled")
            ref = self._task.remote(list(args), timeout_s, self._cwd, self._env)
            self._in_flight.add(ref)
        try:
            return ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return Finished(None, error="cancelled")
        except ray.exceptions.RayError as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            return Finished(None, error=f"Ray lost the run: {type(exc).__name__}: {lines[-1]}")
        finally:
            with self._lock:
                self._in_flight.discard(ref)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            refs = list(self._in_flight)
        for ref in refs:
            # Not forced: the task gets KeyboardInterrupt and subprocess.run kills its child.
            self._ray.cancel(ref)

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(
    name: str,
    *,
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    ray_cpus_per_run: float = 1.0,
) -> Executor:
    """The executor called ``name``; :class:`ExecutorUnavailableError` if Ray is missing."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(ray_address, num_cpus=ray_num_cpus, cpus_per_run=ray_cpus_per_run)
    raise ValueError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor`` and the Ray options, shared by the sweep scripts."""
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="Where simulate runs execute: local subprocesses (--jobs at a time; default) or "
        f"Ray tasks, all submitted at once (needs {RAY_INSTALL_HINT}).",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join: 'auto' (this machine ran ray start), HOST:6379 or "
        "ray://HOST:10001; default: start a local Ray instance for the sweep.",
    )
    parser.add_argument(
        "--ray-num-cpus",
        type=int,
        metavar="N",
        help="CPUs of the local Ray instance (default: all of this machine's).",
    )
    parser.add_argument(
        "--ray-cpus-per-run",
        type=float,
        default=1.0,
        metavar="C",
        help="CPUs each simulate run reserves on its Ray node (default 1).",
    )


def executor_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the executor options, or None; imports Ray when it is asked for.

    Cheap, so that a missing Ray or a contradictory flag stops the script before any run
    or server starts.
    """
    ray_flags = [
        flag
        for flag, value, default in (
            ("--ray-address", args.ray_address, None),
            ("--ray-num-cpus", args.ray_num_cpus, None),
            ("--ray-cpus-per-run", args.ray_cpus_per_run, 1.0),
        )
        if value != default
    ]
    if args.executor != "ray":
        if ray_flags:
            return f"{', '.join(ray_flags)} need --executor ray"
        return None
    if args.ray_address is not None and args.ray_num_cpus is not None:
        return "--ray-num-cpus sizes a local Ray instance; leave it out with --ray-address"
    if args.ray_num_cpus is not None and args.ray_num_cpus < 1:
        return "--ray-num-cpus must be at least 1"
    if args.ray_cpus_per_run <= 0:
        return "--ray-cpus-per-run must be positive"
    try:
        import_ray()
    except ExecutorUnavailableError as exc:
        return str(exc)
    return None


def on_cluster(args: argparse.Namespace) -> bool:
    """Whether the runs may go to other machines: a Ray address is given (without one, the
    sweep starts its own local Ray instance)."""
    return args.executor == "ray" and args.ray_address is not None


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor the options ask for (after :func:`executor_problem` found nothing)."""
    return make_executor(
        args.executor,
        ray_address=args.ray_address,
        ray_num_cpus=args.ray_num_cpus,
        ray_cpus_per_run=args.ray_cpus_per_run,
    )


@contextlib.contextmanager
def running(executor: Executor) -> Iterator[Executor]:
    """Use ``executor`` for a block: its runs are cancelled if the block fails, and it is
    closed at the end."""
    try:
        yield executor
    except BaseException:
        executor.cancel()
        raise
    finally:
        executor.close()
