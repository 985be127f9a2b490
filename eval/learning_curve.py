"""Learning curves: does a planner get better as it plays more users?

For every (world, agent, seed) the script makes **one train pass** over the first
``max(--points)`` train users with memory snapshots after each point N
(``--memory.snapshot-after``), then evaluates **each snapshot on the same fixed test
users** with test-phase learning off (``--memory.learn-during-test false``), so the
points differ only in how many train users the memories saw. N = 0 is the empty memory.
Agents without memories (``react``, ``actonly``) learn nothing by construction: they are
played once and drawn flat, as references.

What it reports, per world, agent and N: test Len and R_traj with 95 % bootstrap
intervals over test users; the paired difference N_max - 0 over the same users (interval
and permutation p-value, :func:`billp.evaluation.bootstrap.paired_comparison`); and the
learning loop's statistics of each test run (reflection retrieval, hint and hint-follow
rates, critic reuse, advantage sign balance, Critic calibration; see
:mod:`billp.evaluation.loop_stats`) and of the train pass.

Every run goes through the real CLI (``python -m billp.simulate``) against one shared
vLLM server (started here unless ``--llm.base-url`` is given). Any other flag goes to
every simulate call, so the same script makes the CPU result and a GPU-sized run::

    python eval/learning_curve.py --worlds matrix --points 0 8 16 32 --test-users 12 \\
        --env.max-steps 10 --out-dir /tmp/curve --markdown eval/results/learning_curve_cpu.md \\
        --plot eval/results/learning_curve_cpu.png
    python eval/learning_curve.py --llm.backend openai --llm.base-url http://gpu:8000/v1 \\
        --llm.model Qwen/Qwen2.5-7B-Instruct --points 0 16 48 96 --test-users 64 --jobs 8

With ``--executor ray [--ray-address auto]`` every run is a Ray task (:mod:`billp.executors`):
all curves go at once, each still playing its train pass before its test runs.

Test users are the first ``--test-users`` of the split's test users; train users are the
split's train users. Nothing is tuned on the test users.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from billp.config import LLM_AGENTS, ConfigError, RunConfig
from billp.evaluation.bootstrap import (
    BOOTSTRAP_RESAMPLES,
    Interval,
    bootstrap,
    episode_weights,
    make_rng,
    paired_comparison,
)
from billp.executors import (
    Executor,
    add_executor_arguments,
    executor_problem,
    running,
)
from billp.policy_registry import names, policy_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_table import (
    cluster_server_problem,
    resolve,
    run_one,
    shared_server,
    start_executor,
)

AGENTS: tuple[str, ...] = names("llm")
WORLDS = ("matrix", "le")
POINTS = (0, 8, 24, 48)
MEMORYLESS = frozenset(
    spec.name for spec in map(policy_spec, AGENTS) if not (spec.preset.macro or spec.preset.micro)
)
"""Agents that keep no memories: their curve is flat by construction."""
METRICS = ("length", "total_reward")
LABELS = {"length": "Len", "total_reward": "R_traj"}
LOOP_COLUMNS = (
    ("reflection_retrieval_rate", "refl."),
    ("hint_rate", "hints"),
    ("hint_follow_rate", "follow"),
    ("critic_reuse_rate", "V reuse"),
    ("minority_advantage_share", "A minority"),
    ("critic_spearman", "V~G rho"),
)
EXIT_BAD_INPUT = 2


@dataclass
class Curve:
    """One (world, agent, seed): the train pass and the test run of each point."""

    world: str
    agent: str
    seed: int
    train_run: Path | None = None
    tests: dict[int, Path] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _flags(world: str, agent: str, seed: int, out_dir: Path, passthrough: list[str]) -> list[str]:
    return [
        *passthrough,
        "--env.name",
        world,
        "--agent.name",
        agent,
        "--seed",
        str(seed),
        "--memory.dir",
        str(out_dir / "memory"),
        "--progress",
        "false",
    ]


def train_args(
    world: str, agent: str, seed: int, points: Sequence[int], out_dir: Path, passthrough: list[str]
) -> list[str]:
    """The train pass: max(points) train users, no test users, snapshots at each point."""
    snapshots = [str(n) for n in points if n > 0]
    return [
        *_flags(world, agent, seed, out_dir, passthrough),
        "--train-users",
        str(max(points)),
        "--test-users",
        "0",
        "--memory.snapshot-after",
        *snapshots,
        "--output-dir",
        str(out_dir / "train" / world / agent),
    ]


def test_args(
    world: str,
    agent: str,
    seed: int,
    point: int,
    snapshot: Path | None,
    test_users: int,
    out_dir: Path,
    passthrough: list[str],
) -> list[str]:
    """A test run of the memories after ``point`` train users (learning off)."""
    args = [
        *_flags(world, agent, seed, out_dir, passthrough),
        "--train-users",
        "0",
        "--test-users",
        str(test_users),
        "--memory.learn-during-test",
        "false",
        "--output-dir",
        str(out_dir / "test" / world / agent / f"after-{point:04d}"),
    ]
    if snapshot is not None:
        args += ["--memory.init", str(snapshot)]
    return args


def play_curve(
    curve: Curve,
    points: Sequence[int],
    test_users: int,
    out_dir: Path,
    passthrough: list[str],
    console: Console,
    timeout_s: float | None,
    executor: Executor | None = None,
) -> Curve:
    """Run a curve's train pass and its test runs, in order (through ``executor``, default
    local subprocesses)."""
    flat = curve.agent in MEMORYLESS
    snapshots: dict[int, Path] = {}
    if not flat and max(points) > 0:
        run, error = run_one(
            train_args(curve.world, curve.agent, curve.seed, points, out_dir, passthrough),
            console,
            timeout_s,
            executor,
        )
        if run is None:
            curve.errors.append(f"train pass: {error}")
            return curve
        curve.train_run = run
        for point in points:
            if point > 0:
                snapshots[point] = run / "memory_snapshots" / f"after-{point:04d}"
    for point in [0] if flat else list(points):
        snapshot = snapshots.get(point)
        args = test_args(
            curve.world, curve.agent, curve.seed, point, snapshot, test_users, out_dir, passthrough
        )
        run, error = run_one(args, console, timeout_s, executor)
        if run is None:
            curve.errors.append(f"N={point}: {error}")
            continue
        curve.tests[point] = run
    if flat and 0 in curve.tests:
        curve.tests = {point: curve.tests[0] for point in points}
    return curve


# ------------------------------------------------------------------ numbers
def test_episodes(run_dir: Path) -> dict[int, dict[str, float]]:
    """user id -> Len and R_traj of the run's test episodes."""
    out = {}
    for line in (run_dir / "episodes.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record["phase"] == "test":
                out[int(record["user_id"])] = {m: float(record[m]) for m in METRICS}
    return out


def _mean_stat(values: np.ndarray):  # type: ignore[no-untyped-def]
    def statistic(weights: np.ndarray) -> np.ndarray:
        return (weights @ values) / weights.sum(axis=1)

    return statistic


def mean_interval(values: list[float]) -> Interval:
    """Mean over users with its 95 % bootstrap interval."""
    array = np.asarray(values, dtype=np.float64)
    weights = episode_weights(len(array), BOOTSTRAP_RESAMPLES, make_rng())
    return bootstrap(_mean_stat(array), weights, len(array))


def point_numbers(curve: Curve) -> dict[int, dict[str, Any]]:
    """Per point: metric intervals and the test run's loop statistics."""
    out: dict[int, dict[str, Any]] = {}
    for point, run in sorted(curve.tests.items()):
        episodes = test_episodes(run)
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        entry: dict[str, Any] = {"run": str(run), "users": len(episodes)}
        for metric in METRICS:
            entry[metric] = mean_interval([e[metric] for e in episodes.values()]).as_dict()
        entry["loop"] = summary.get("loop", {}).get("test", {})
        out[point] = entry
    return out


def paired_gain(curve: Curve, low: int, high: int) -> dict[str, Any]:
    """Paired difference (high - low) per metric over the users both runs played."""
    if low not in curve.tests or high not in curve.tests:
        return {}
    a, b = test_episodes(curve.tests[low]), test_episodes(curve.tests[high])
    users = sorted(set(a) & set(b))
    out = {}
    for metric in METRICS:
        joint = np.asarray([a[u][metric] for u in users] + [b[u][metric] for u in users])
        out[metric] = paired_comparison(_mean_stat(joint), len(users)).as_dict()
    return out


def train_loop(curve: Curve) -> dict[str, Any]:
    if curve.train_run is None:
        return {}
    summary = json.loads((curve.train_run / "summary.json").read_text(encoding="utf-8"))
    return summary.get("loop", {}).get("train", {})


# ------------------------------------------------------------------ output
def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cell(interval: dict[str, Any]) -> str:
    mean, low, high = interval["mean"], interval["ci_low"], interval["ci_high"]
    if mean is None:
        return "-"
    if low is None or high is None:
        return f"{mean:.2f}"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def _loop_header() -> str:
    return " | ".join(label for _, label in LOOP_COLUMNS) + " |"


def _loop_cells(loop: dict[str, Any]) -> str:
    return " | ".join(_fmt(loop.get(key)) for key, _ in LOOP_COLUMNS) + " |"


def markdown(results: list[dict[str, Any]], command: str, caption: str) -> str:
    lines = [
        "# Learning curves (test phase vs train users seen)",
        "",
        "Produced by:",
        "",
        "```",
        command,
        "```",
        "",
        caption,
        "",
        "## Test Len and R_traj after N train users (mean [95 % CI] over the same test users)",
        "",
        "| world | agent | seed | N | Len | R_traj | " + _loop_header(),
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(LOOP_COLUMNS),
    ]
    for result in results:
        for point, entry in result["points"].items():
            loop = entry["loop"]
            lines.append(
                f"| {result['world']} | {result['agent']} | {result['seed']} | {point} | "
                f"{_cell(entry['length'])} | {_cell(entry['total_reward'])} | " + _loop_cells(loop)
            )
    lines += [
        "",
        "## Paired difference N_max - 0 over the same test users",
        "",
        "| world | agent | seed | users | ΔLen [95 % CI] | p | ΔR_traj [95 % CI] | p |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        gain = result["gain"]
        if not gain:
            continue
        cells = []
        for metric in METRICS:
            g = gain[metric]
            cells.append(
                f"{_fmt(g['diff'])} [{_fmt(g['diff_ci_low'])}, {_fmt(g['diff_ci_high'])}] | "
                f"{_fmt(g['p_value'], 3)}"
            )
        lines.append(
            f"| {result['world']} | {result['agent']} | {result['seed']} | "
            f"{gain['length']['pairs']} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "## The learning loop during each train pass",
        "",
        "| world | agent | seed | episodes | steps | " + _loop_header(),
        "|---|---|---:|---:|---:|" + "---:|" * len(LOOP_COLUMNS),
    ]
    for result in results:
        loop = result["train_loop"]
        if loop:
            lines.append(
                f"| {result['world']} | {result['agent']} | {result['seed']} | "
                f"{loop.get('episodes')} | {loop.get('steps')} | " + _loop_cells(loop)
            )
    lines += [
        "",
        "Loop columns: refl. = share of episodes whose Planner saw a reflection; hints = share "
        "of steps with an actor-memory hint; follow = share of hinted steps whose choice was "
        "an encouraged item; V reuse = share of V(s) taken from critic memory; A minority = "
        "share of the rarer advantage sign; V~G rho = Spearman of V(s) with the realised "
        "discounted-average return.",
        "",
    ]
    return "\n".join(lines)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worlds = sorted({r["world"] for r in results})
    fig, axes = plt.subplots(
        len(worlds), 2, figsize=(11, 4 * len(worlds)), squeeze=False, constrained_layout=True
    )
    for row, world in enumerate(worlds):
        for col, metric in enumerate(METRICS):
            ax = axes[row][col]
            for result in (r for r in results if r["world"] == world):
                points = sorted(result["points"])
                means = [result["points"][p][metric]["mean"] for p in points]
                lows = [
                    _or(result["points"][p][metric]["ci_low"], m)
                    for p, m in zip(points, means, strict=True)
                ]
                highs = [
                    _or(result["points"][p][metric]["ci_high"], m)
                    for p, m in zip(points, means, strict=True)
                ]
                yerr = [
                    [m - lo for m, lo in zip(means, lows, strict=True)],
                    [hi - m for m, hi in zip(means, highs, strict=True)],
                ]
                style = "--" if result["agent"] in MEMORYLESS else "-"
                ax.errorbar(
                    points,
                    means,
                    yerr=yerr,
                    fmt=style + "o",
                    capsize=3,
                    label=f"{result['agent']} (seed {result['seed']})",
                )
            ax.set_title(f"{world}: test {LABELS[metric]}")
            ax.set_xlabel("train users seen (N)")
            ax.set_ylabel(LABELS[metric])
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python eval/learning_curve.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Any other --section.field flag is passed to every python -m billp.simulate call.",
    )
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), help="env.name values.")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), help="LLM agents.")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="Run seeds.")
    parser.add_argument(
        "--points", nargs="+", type=int, default=list(POINTS), help="Train users N of each point."
    )
    parser.add_argument("--test-users", type=int, default=16, help="Fixed test users per point.")
    parser.add_argument("--out-dir", type=Path, default=Path("eval/curve_runs"))
    parser.add_argument("--markdown", type=Path, help="Write the tables as markdown here.")
    parser.add_argument("--plot", type=Path, help="Write the PNG plot here.")
    parser.add_argument("--json", type=Path, help="Write the numbers as JSON here.")
    parser.add_argument(
        "--jobs", type=int, default=1, help="Curves played at once (local executor)."
    )
    parser.add_argument("--run-timeout-s", type=float, default=None)
    add_executor_arguments(parser)
    return parser


def check_inputs(args: argparse.Namespace, base: RunConfig) -> str | None:
    """A user error in the arguments, or None."""
    unknown = [a for a in args.agents if a not in LLM_AGENTS]
    if unknown:
        return f"--agents takes LLM agents ({', '.join(LLM_AGENTS)}); got {unknown}"
    if any(p < 0 for p in args.points) or 0 not in args.points:
        return "--points must be >= 0 and include 0 (the empty memory)"
    if any(p % base.wave_size for p in args.points):
        return f"--points must be multiples of wave_size={base.wave_size} (wave boundaries)"
    if args.test_users < 2:
        return "--test-users must be at least 2"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, passthrough = build_parser().parse_known_args(argv)
    problem = executor_problem(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    console = Console(width=None if sys.stdout.isatty() else 160)
    out_dir = args.out_dir.resolve()
    try:
        base = resolve(passthrough)
    except (ConfigError, SystemExit) as exc:
        print(f"error: invalid simulate arguments: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = check_inputs(args, base) or cluster_server_problem(args, base.llm, args.agents)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    points = sorted(set(args.points))
    curves = [
        Curve(world, agent, seed)
        for world in args.worlds
        for agent in args.agents
        for seed in args.seeds
    ]
    executor = start_executor(args)
    if executor is None:
        return EXIT_BAD_INPUT
    with running(executor), shared_server(base.llm, args.agents, out_dir, console) as flags:
        width = executor.width(max(1, args.jobs), len(curves))
        with ThreadPoolExecutor(max_workers=width) as pool:
            try:
                done = list(
                    pool.map(
                        lambda c: play_curve(
                            c,
                            points,
                            args.test_users,
                            out_dir,
                            [*passthrough, *flags],
                            console,
                            args.run_timeout_s,
                            executor,
                        ),
                        curves,
                    )
                )
            except BaseException:
                executor.cancel()
                raise
    results = []
    failures = []
    for curve in done:
        failures += [f"{curve.world}/{curve.agent}/seed {curve.seed}: {e}" for e in curve.errors]
        if not curve.tests:
            continue
        results.append(
            {
                "world": curve.world,
                "agent": curve.agent,
                "seed": curve.seed,
                "points": point_numbers(curve),
                "gain": paired_gain(curve, 0, max(curve.tests)),
                "train_loop": train_loop(curve),
            }
        )
    command = shlex.join(["python", "eval/learning_curve.py", *argv])
    caption = (
        f"Points N = {', '.join(map(str, points))}; {args.test_users} fixed test users; "
        f"seeds {', '.join(map(str, args.seeds))}; test-phase learning off; react/actonly keep "
        "no memories (flat references)."
    )
    text = markdown(results, command, caption)
    print(text)
    for failure in failures:
        console.print(f"[red]failed:[/red] {failure}")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    if args.plot is not None and results:
        plot(results, args.plot)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": command, "failures": failures, "results": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
