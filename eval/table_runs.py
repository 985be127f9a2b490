"""The runs behind eval/paper_table.py: the simulate arguments of each (env, policy, seed), one
shared vLLM server, and running, reusing or resuming each run through an executor.

eval/learning_curve.py runs its simulate calls through the same helpers.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from billp.config import (
    LLM_AGENTS,
    ConfigError,
    LLMConfig,
    RunConfig,
    config_to_toml_dict,
    load_config,
)
from billp.config.flags import collect_overrides
from billp.evaluation.executors import Executor, LocalExecutor
from billp.records.read import flatten, is_run_dir
from billp.simulate import build_parser as simulate_parser

IGNORED_WHEN_MATCHING: frozenset[str] = frozenset(
    {"output_dir", "progress", "llm.base_url", "llm.served_model_name"}
)
"""Config fields that may differ between a reusable run and the requested one. Runs are
matched by model (``llm.model``), not by the endpoint that served it: the shared server of
one invocation gets another port in the next."""
STDERR_TAIL_LINES = 6


@dataclass
class Cell:
    """What one (env, policy) pair produced."""

    runs: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def simulate_args(
    env: str,
    policy: str,
    seed: int,
    out_dir: Path,
    passthrough: list[str],
    config: Path | None,
    *,
    test_user_offset: int,
) -> list[str]:
    """Arguments of ``python -m billp.simulate`` for one run (its seed's test users)."""
    args = [] if config is None else ["--config", str(config)]
    args += list(passthrough)
    args += [
        "--env.name",
        env,
        "--agent.name",
        policy,
        "--seed",
        str(seed),
        "--test-user-offset",
        str(test_user_offset),
        "--output-dir",
        str(out_dir / "runs" / env / policy),
        "--memory.dir",
        str(out_dir / "memory"),
        "--progress",
        "false",
    ]
    if policy not in LLM_AGENTS:
        args += ["--train-users", "0"]
    return args


def test_user_offsets(seeds: list[int], test_users: int, start: int = 0) -> dict[int, int]:
    """Seed -> its first test user: the i-th seed plays the i-th block of ``test_users``."""
    return {seed: start + i * test_users for i, seed in enumerate(seeds)}


def resolve(args: list[str]) -> RunConfig:
    """The config ``python -m billp.simulate ARGS`` would run."""
    namespace = simulate_parser().parse_args(args)
    return load_config(namespace.config, collect_overrides(namespace, RunConfig))


def _comparable(config: RunConfig) -> dict[str, Any]:
    flat = flatten(config_to_toml_dict(config))
    return {k: v for k, v in flat.items() if k not in IGNORED_WHEN_MATCHING}


def find_existing(expected: RunConfig) -> tuple[Path | None, bool]:
    """A run directory made with ``expected`` (newest first) and whether it is complete."""
    folder = expected.output_dir
    if not folder.is_dir():
        return None, False
    want = _comparable(expected)
    for path in sorted(folder.iterdir(), reverse=True):
        if not is_run_dir(path):
            continue
        try:
            have = _comparable(load_config(path / "config.toml"))
        except ConfigError:
            continue
        if have == want:
            return path, (path / "summary.json").is_file()
    return None, False


def needs_shared_server(llm: LLMConfig, policies: list[str]) -> bool:
    """Whether :func:`shared_server` starts a server: an LLM policy, backend ``vllm``, no
    ``llm.base_url`` and no replayed cache."""
    wanted = any(p in LLM_AGENTS for p in policies)
    return wanted and llm.backend == "vllm" and not llm.base_url and llm.cache != "replay"


@contextlib.contextmanager
def shared_server(
    llm: LLMConfig, policies: list[str], out_dir: Path, console: Console
) -> Iterator[list[str]]:
    """One vLLM server for every LLM run of the table; yields the flags that point runs at it.

    ``llm`` is the LLM section every run resolves to. Without a shared server each
    ``billp.simulate`` call would start (and stop) one of its own, a minute of start-up per
    run on CPU. Nothing is started when no LLM policy is asked for, the backend is not
    ``vllm``, or ``llm.base_url`` already names a server.
    """
    if not needs_shared_server(llm, policies):
        yield []
        return
    from billp.common.provision import resolve_model
    from billp.llm.server import VLLMServer

    model = resolve_model(llm.model, served_name=llm.served_model_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "vllm_server.log"
    console.print(f"starting one vLLM server for {model.served_name} (log: {log_path})")
    with VLLMServer(model, llm.server, log_path) as server:
        console.print(f"  ready at {server.base_url}")
        yield ["--llm.base-url", server.base_url, "--llm.served-model-name", model.served_name]


def run_one(
    args: list[str],
    console: Console,
    timeout_s: float | None,
    executor: Executor | None = None,
) -> tuple[Path | None, str]:
    """Run (or reuse, or resume) one simulate call; the run directory or an error text.

    Reuse and resume are decided here; ``executor`` (default: a local subprocess) only runs
    the command.
    """
    executor = LocalExecutor() if executor is None else executor
    try:
        expected = resolve(args)
    except (ConfigError, SystemExit) as exc:
        return None, f"invalid simulate arguments: {exc}"
    existing, complete = find_existing(expected)
    if existing is not None and complete:
        console.print(f"  reusing {existing}")
        return existing, ""
    command = ["--resume", str(existing)] if existing is not None else args
    console.print(f"  $ {shlex.join(['python', '-m', 'billp.simulate', *command])}")
    started = time.perf_counter()
    done = executor.run(command, timeout_s)
    where = f" on {done.node}" if done.node else ""
    if done.timed_out:
        return None, f"timed out after {timeout_s} s{where}"
    if done.error is not None or done.returncode is None:
        return None, done.error or "no exit status"
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
        return None, f"exit status {done.returncode}{where}:\n{tail}"
    found, complete = find_existing(expected)
    if found is None or not complete:
        return None, (
            f"finished but no complete run directory under {expected.output_dir}"
            + executor.missing_run_hint
        )
    console.print(f"  done in {time.perf_counter() - started:.1f} s: {found}")
    return found, ""


def run_all(
    envs: list[str],
    policies: list[str],
    seeds: list[int],
    out_dir: Path,
    passthrough: list[str],
    config: Path | None,
    console: Console,
    timeout_s: float | None = None,
    jobs: int = 1,
    *,
    offsets: Mapping[int, int],
    executor: Executor | None = None,
) -> tuple[dict[tuple[str, str], Cell], dict[str, str]]:
    """Every run; returns the cells and the environments skipped (with the reason).

    ``offsets`` maps each seed to its first test user (:func:`test_user_offsets`).

    The first run of each environment goes alone: if it fails, the environment is skipped.
    The others run ``jobs`` at a time (separate processes sharing one LLM server, which
    keeps a server busy when each run has few episodes in flight); cells keep seed order.
    ``executor`` runs the commands (default: local subprocesses); a Ray executor gets every
    run at once and Ray bounds how many run.
    """
    executor = LocalExecutor() if executor is None else executor
    cells: dict[tuple[str, str], Cell] = {}
    skipped: dict[str, str] = {}
    for env in envs:
        todo = [(policy, seed) for policy in policies for seed in seeds]
        for policy in policies:
            cells.setdefault((env, policy), Cell())
        results: dict[tuple[str, int], tuple[Path | None, str]] = {}

        def one(policy: str, seed: int, env: str = env) -> tuple[Path | None, str]:
            console.print(f"[bold]{env} / {policy} / seed {seed}[/bold]")
            args = simulate_args(
                env, policy, seed, out_dir, passthrough, config, test_user_offset=offsets[seed]
            )
            return run_one(args, console, timeout_s, executor)

        first = todo[0]
        results[first] = one(*first)
        if results[first][0] is None:
            skipped[env] = results[first][1]
            console.print(
                f"[yellow]skipping environment {env!r}: its first run failed "
                f"({results[first][1]})[/yellow]"
            )
            continue
        with ThreadPoolExecutor(max_workers=executor.width(jobs, len(todo) - 1)) as pool:
            futures = {key: pool.submit(one, *key) for key in todo[1:]}
            try:
                for key, future in futures.items():
                    results[key] = future.result()
            except BaseException:
                executor.cancel()
                raise
        for policy, seed in todo:
            path, error = results[(policy, seed)]
            cell = cells[(env, policy)]
            if path is not None:
                cell.runs.append(path)
            else:
                cell.failures.append(f"seed {seed}: {error}")
                console.print(f"[red]{env}/{policy}/seed {seed} failed:[/red] {error}")
    return cells, skipped
