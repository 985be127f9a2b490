"""Reproduce the layout of BiLLP's Table 3: Len, R_each, R_traj per method and environment.

Every policy is run on every environment with several seeds through the real CLI
(``python -m billp.simulate``), with the paper's train-then-test protocol: a run plays
its train users first (LLM agents build their memories there), reloads the memories and
plays the test users; the table reports the test phase. Non-LLM baselines learn nothing,
so their runs skip the train phase (``--train-users 0``).

**Each seed plays its own test users.** With ``--test-users M``, the i-th seed of
``--seeds`` plays the split's test users i*M .. (i+1)*M - 1 (``--test-user-offset i*M``,
added to any offset given), so the seeds' test users are disjoint; every policy of a seed
plays the same users, so rows stay comparable user for user. Were the seeds to replay one
set of users, a deterministic policy (popularity, the greedy oracles, the RL policies)
would play the same episodes once per seed, and the bootstrap would count each three
times. The split must hold len(seeds) * M test users (checked before any run).

Cells are ``mean ± h``: the mean over all test episodes of the seeds, and ``h`` half the
width of the 95 % two-level bootstrap interval over seeds and episodes
(:mod:`billp.evaluation.bootstrap`): runs drawn with replacement, then episodes within
each drawn run. With disjoint users every episode is a distinct (user, seed) draw, so the
interval counts no episode twice. LLM agents' runs share their train users (the first N of
the split), so their intervals are conditional on that train set.

Any further flag is passed to every simulate call, so the same script gives the CPU
numbers and the numbers of a model on a GPU server::

    python eval/paper_table.py --out-dir eval/paper_runs --markdown eval/results/table3_cpu.md
    python eval/paper_table.py --llm.backend openai --llm.base-url http://gpu:8000/v1 \\
        --llm.model Qwen/Qwen2.5-7B-Instruct --out-dir eval/paper_runs_7b
    python eval/paper_table.py --llm.backend scripted --policies random greedy \\
        --train-users 2 --test-users 3 --env.max-steps 8        # a quick smoke test

RL methods play trained checkpoints (``python -m billp.rl train ...`` first; see billp.rl).

Runs are local subprocesses, ``--jobs`` at a time, or with ``--executor ray`` Ray tasks on a
local Ray instance or, with ``--ray-address auto``, a cluster (:mod:`billp.executors`; the
README's "Sweeps on a cluster")::

    python eval/paper_table.py --executor ray --ray-address auto --llm.backend openai \
        --llm.base-url http://vllm-a:8000/v1 http://vllm-b:8000/v1 \
        --llm.model Qwen/Qwen2.5-7B-Instruct --out-dir /shared/paper_runs

Runs already complete under ``--out-dir`` with the same resolved config are reused;
an interrupted one is finished with ``--resume``. An environment whose first run fails
(for instance one that is not implemented yet) is skipped with its error shown.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from billp.cli import collect_overrides
from billp.config import (
    LLM_AGENTS,
    ConfigError,
    LLMConfig,
    RunConfig,
    config_to_toml_dict,
    load_config,
)
from billp.data import DataError, load_dataset
from billp.evaluation.evaluate import evaluate
from billp.evaluation.metrics import METRIC_BY_NAME, PAPER_METRICS
from billp.evaluation.rundir import RunDirError, flatten, is_run_dir, load_run
from billp.executors import (
    Executor,
    LocalExecutor,
    add_executor_arguments,
    executor_from_args,
    executor_problem,
    on_cluster,
    running,
)
from billp.rl.names import RL_AGENT_NAMES
from billp.simulate import build_parser as simulate_parser

BASELINES: tuple[str, ...] = ("random", "popularity", "greedy", "greedy-diverse")
RL_METHODS: tuple[str, ...] = RL_AGENT_NAMES
"""Trained with ``python -m billp.rl train`` beforehand (found under $BILLP_RL_CHECKPOINTS,
default runs/rl); an untrained one fails its cells with the command that trains it."""
LLM_METHODS: tuple[str, ...] = ("actonly", "react", "reflexion", "billp")
ABLATIONS: tuple[str, ...] = ("billp-no-macro", "billp-no-micro")
POLICIES: tuple[str, ...] = (*BASELINES, *RL_METHODS, *LLM_METHODS, *ABLATIONS)
ENVS: tuple[str, ...] = ("matrix", "le")
SEEDS: tuple[int, ...] = (0, 1, 2)
PRETTY: dict[str, str] = {
    "random": "Random",
    "popularity": "Popularity",
    "greedy": "Greedy (oracle)",
    "greedy-diverse": "Greedy-diverse (oracle)",
    "sqn": "SQN",
    "sqn-sm": "SQN +SM",
    "sqn-rm": "SQN +RM",
    "lea": "SQN +LEA",
    "sqn-all": "SQN (all the LE's users)",
    "dqn-matrix": "DQN (trained: matrix)",
    "dqn-le": "DQN (trained: LE)",
    "bcq": "BCQ",
    "cql": "CQL",
    "crr": "CRR",
    "a2c-matrix": "A2C (trained: matrix)",
    "a2c-le": "A2C (trained: LE)",
    "actonly": "ActOnly",
    "react": "ReAct",
    "reflexion": "Reflexion",
    "billp": "BiLLP",
    "billp-no-macro": "BiLLP w/o macro",
    "billp-no-micro": "BiLLP w/o micro",
}
IGNORED_WHEN_MATCHING: frozenset[str] = frozenset(
    {"output_dir", "progress", "llm.base_url", "llm.served_model_name"}
)
"""Config fields that may differ between a reusable run and the requested one. Runs are
matched by model (``llm.model``), not by the endpoint that served it: the shared server of
one invocation gets another port in the next."""
STDERR_TAIL_LINES = 6
CONSOLE_WIDTH = 160
"""Table width when stdout is not a terminal."""
EXIT_BAD_INPUT = 2


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


def missing_test_users(base: RunConfig, offsets: Mapping[int, int]) -> str | None:
    """Why the split cannot give every seed its own test users; None when it can.

    A dataset that does not load is left to the runs, which report it themselves.
    """
    if base.test_users == 0 or not offsets:
        return None
    needed = max(offsets.values()) + base.test_users
    try:
        available = len(load_dataset(base.data).split.test_users)
    except (DataError, OSError):
        return None
    if needed <= available:
        return None
    return (
        f"{len(offsets)} seeds x {base.test_users} test users each need {needed} test users "
        f"(from test user {min(offsets.values())}), but the split has {available}: "
        "ask for fewer seeds or test users, or raise --data.test-user-fraction"
    )


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
    from billp.llm.server import VLLMServer
    from billp.provision import resolve_model

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


def cell_values(paths: list[Path]) -> dict[str, dict[str, float]]:
    """Len, R_each and R_traj of a cell's runs: mean, interval, seeds, episodes."""
    runs = [load_run(p) for p in paths]
    group = evaluate(runs, phase="test").groups
    if len(group) != 1:
        raise RunDirError(
            "runs of one table cell differ in more than their seed: "
            + ", ".join(str(p) for p in paths)
        )
    series = group[0]
    out: dict[str, dict[str, float]] = {}
    for name in PAPER_METRICS:
        m = series.metrics[name]
        out[name] = {"mean": m.mean, "ci_low": m.low, "ci_high": m.high}
    out["_"] = {"seeds": float(len(runs)), "episodes": float(len(series.table))}
    return out


def users_caption(offsets: Mapping[int, int], base: RunConfig) -> str:
    """Which test users each seed played, and what the ± means."""
    m = base.test_users
    blocks = ", ".join(f"seed {s}: {o}-{o + m - 1}" for s, o in offsets.items())
    return (
        f"each seed plays its own {m} test users (split positions {blocks}), so no episode is "
        "counted twice; ± is half the 95% two-level bootstrap CI over seeds, then episodes"
    )


def format_cell(value: dict[str, float], digits: int) -> str:
    mean, low, high = value["mean"], value["ci_low"], value["ci_high"]
    if not math.isfinite(mean):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(high - low) / 2:.{digits}f}"


def build_rows(
    cells: dict[tuple[str, str], Cell], envs: list[str], policies: list[str]
) -> tuple[list[list[str]], dict[str, Any]]:
    """Table rows (method, then Len/R_each/R_traj per env) and the raw numbers."""
    rows = []
    numbers: dict[str, Any] = {}
    for policy in policies:
        row = [PRETTY.get(policy, policy)]
        for env in envs:
            cell = cells.get((env, policy), Cell())
            if not cell.runs:
                row += ["n/a"] * len(PAPER_METRICS)
                continue
            values = cell_values(cell.runs)
            numbers[f"{env}/{policy}"] = values
            for name in PAPER_METRICS:
                row.append(format_cell(values[name], METRIC_BY_NAME[name].digits))
        rows.append(row)
    return rows, numbers


def print_table(rows: list[list[str]], envs: list[str], console: Console, caption: str) -> None:
    table = Table(
        title="Table 3 layout: test-phase engagement (mean ± 95% CI half-width over seeds)",
        caption=caption,
        title_justify="left",
    )
    table.add_column("Method")
    for env in envs:
        for name in PAPER_METRICS:
            table.add_column(f"{env}: {METRIC_BY_NAME[name].label}", justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def markdown(rows: list[list[str]], envs: list[str], command: str, caption: str) -> str:
    header = ["Method"] + [
        f"{env} {METRIC_BY_NAME[n].label}" for env in envs for n in PAPER_METRICS
    ]
    lines = [
        "# BiLLP Table 3 layout",
        "",
        f"Produced {time.strftime('%Y-%m-%d %H:%M %Z')} by:",
        "",
        "```bash",
        command,
        "```",
        "",
        caption,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python eval/paper_table.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Any other --section.field flag is passed to every python -m billp.simulate call.",
    )
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="Environments (env.name).")
    parser.add_argument(
        "--policies", nargs="+", default=list(POLICIES), help="Policies (agent.name)."
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(SEEDS),
        help="Run seeds; the i-th plays the split's i-th block of --test-users test users.",
    )
    parser.add_argument(
        "--out-dir", type=Path, default=Path("eval/paper_runs"), help="Home of the run directories."
    )
    parser.add_argument("--config", type=Path, help="Base TOML config of every run.")
    parser.add_argument("--markdown", type=Path, help="Also write the table as markdown here.")
    parser.add_argument("--json", type=Path, help="Also write the numbers as JSON here.")
    parser.add_argument(
        "--run-timeout-s", type=float, default=None, help="Give up on a run after this long."
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="Simulate runs at once with the local executor (they share one LLM server; more "
        "keeps a big server busy).",
    )
    add_executor_arguments(parser)
    return parser


def cluster_server_problem(
    args: argparse.Namespace, llm: LLMConfig, policies: list[str]
) -> str | None:
    """Why the runs cannot reach their LLM on a Ray cluster, or None.

    The vLLM server this script would start listens on this machine's loopback, which the
    other nodes cannot reach: on a cluster the LLM runs need the deployment's URLs.
    """
    if not on_cluster(args) or not needs_shared_server(llm, policies):
        return None
    return (
        "--executor ray on a cluster needs the vLLM deployment's URLs "
        "(--llm.base-url URL [URL ...]): a server started here would listen on this "
        "machine's loopback only"
    )


def start_executor(args: argparse.Namespace) -> Executor | None:
    """The executor of ``--executor``; None (with the error printed) if Ray cannot start."""
    try:
        return executor_from_args(args)
    except Exception as exc:
        print(f"error: could not start or join Ray: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, passthrough = build_parser().parse_known_args(argv)
    unknown = [a for a in passthrough if a.startswith("-") and not a.startswith("--")]
    if unknown:
        print(f"error: unknown short options {unknown}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = executor_problem(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    console = Console(width=None if sys.stdout.isatty() else CONSOLE_WIDTH)
    out_dir = args.out_dir.resolve()
    try:
        base = resolve(
            [*([] if args.config is None else ["--config", str(args.config)]), *passthrough]
        )
    except (ConfigError, SystemExit) as exc:
        print(f"error: invalid simulate arguments: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    seeds = list(dict.fromkeys(args.seeds))
    offsets = test_user_offsets(seeds, base.test_users, base.test_user_offset)
    problem = missing_test_users(base, offsets) or cluster_server_problem(
        args, base.llm, args.policies
    )
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    executor = start_executor(args)
    if executor is None:
        return EXIT_BAD_INPUT
    with running(executor), shared_server(base.llm, args.policies, out_dir, console) as flags:
        cells, skipped = run_all(
            args.envs,
            args.policies,
            seeds,
            out_dir,
            [*passthrough, *flags],
            args.config,
            console,
            args.run_timeout_s,
            max(1, args.jobs),
            offsets=offsets,
            executor=executor,
        )
    envs = [e for e in args.envs if e not in skipped]
    command = shlex.join(["python", "eval/paper_table.py", *argv])
    failures = [f"{e}/{p}: {f}" for (e, p), c in cells.items() for f in c.failures]
    skipped_text = ", ".join(f"{k} ({v.splitlines()[-1]})" for k, v in skipped.items())
    caption = (
        f"seeds {', '.join(map(str, seeds))}; test phase; {users_caption(offsets, base)}; "
        + (f"skipped environments: {skipped_text}" if skipped else "all environments ran")
    )
    if not envs:
        console.print("[red]no environment produced runs[/red]")
        return 1
    rows, numbers = build_rows(cells, envs, args.policies)
    print_table(rows, envs, console, caption)
    for failure in failures:
        console.print(f"[red]failed:[/red] {failure}")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(rows, envs, command, caption), encoding="utf-8")
        console.print(f"wrote {args.markdown}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": command, "skipped": skipped, "failures": failures, "cells": numbers}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
