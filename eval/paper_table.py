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
local Ray instance or, with ``--ray-address auto``, a cluster
(:mod:`billp.evaluation.executors`; the README's "Sweeps on a cluster")::

    python eval/paper_table.py --executor ray --ray-address auto --llm.backend openai \
        --llm.base-url http://vllm-a:8000/v1 http://vllm-b:8000/v1 \
        --llm.model Qwen/Qwen2.5-7B-Instruct --out-dir /shared/paper_runs

Runs already complete under ``--out-dir`` with the same resolved config are reused;
an interrupted one is finished with ``--resume``. An environment whose first run fails
(for instance one that is not implemented yet) is skipped with its error shown.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from billp.common.exit_codes import EXIT_BAD_INPUT
from billp.config import ConfigError, LLMConfig, RunConfig
from billp.config import load_config as load_config
from billp.data import DataError, load_dataset
from billp.evaluation.executors import (
    Executor,
    add_executor_arguments,
    executor_from_args,
    executor_problem,
    on_cluster,
    running,
)
from billp.policy_registry import names

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The runs and the table live in table_runs and table_layout; the names marked "as" stay
# importable from this script.
from table_layout import PRETTY as PRETTY
from table_layout import build_rows, markdown, print_table, users_caption
from table_layout import cell_values as cell_values
from table_layout import format_cell as format_cell
from table_runs import IGNORED_WHEN_MATCHING as IGNORED_WHEN_MATCHING
from table_runs import STDERR_TAIL_LINES as STDERR_TAIL_LINES
from table_runs import Cell as Cell
from table_runs import _comparable as _comparable
from table_runs import find_existing as find_existing
from table_runs import needs_shared_server, resolve, run_all, shared_server, test_user_offsets
from table_runs import run_one as run_one
from table_runs import simulate_args as simulate_args

BASELINES: tuple[str, ...] = ("random", "popularity", "greedy", "greedy-diverse")
RL_METHODS: tuple[str, ...] = names("rl")
"""Trained with ``python -m billp.rl train`` beforehand (found under $BILLP_RL_CHECKPOINTS,
default runs/rl); an untrained one fails its cells with the command that trains it."""
LLM_METHODS: tuple[str, ...] = ("actonly", "react", "reflexion", "billp")
ABLATIONS: tuple[str, ...] = ("billp-no-macro", "billp-no-micro")
POLICIES: tuple[str, ...] = (*BASELINES, *RL_METHODS, *LLM_METHODS, *ABLATIONS)
ENVS: tuple[str, ...] = ("matrix", "le")
SEEDS: tuple[int, ...] = (0, 1, 2)
CONSOLE_WIDTH = 160
"""Table width when stdout is not a terminal."""


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
