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
:mod:`billp.summary.loop_stats`) and of the train pass.

Every run goes through the real CLI (``python -m billp.simulate``) against one shared
vLLM server (started here unless ``--llm.base-url`` is given). Any other flag goes to
every simulate call, so the same script makes the CPU result and a GPU-sized run::

    python eval/learning_curve.py --worlds matrix --points 0 8 16 32 --test-users 12 \\
        --env.max-steps 10 --out-dir /tmp/curve --markdown eval/results/learning_curve_cpu.md \\
        --plot eval/results/learning_curve_cpu.png
    python eval/learning_curve.py --llm.backend openai --llm.base-url http://gpu:8000/v1 \\
        --llm.model Qwen/Qwen2.5-7B-Instruct --points 0 16 48 96 --test-users 64 --jobs 8

``--variant NAME=FLAGS`` (repeatable) plays every curve once per named set of extra flags (the
knowledge settings, a control such as ``--memory.shuffle-rewards true``); ``--seed-blocks``
gives each seed its own block of test users. Besides each curve's own gain, the first agent of
every (world, variant, seed) is compared at its last point with each other agent, paired over
the same test users::

    python eval/learning_curve.py --worlds le --agents billp actonly --points 0 32 \
        --seeds 0 1 2 --seed-blocks --test-users 32 --env.max-steps 10 \
        --variant 'informed=--agent.knowledge informed' \
        --variant 'uninformed=--agent.knowledge uninformed' --out-dir DIR --json F --markdown M

With ``--executor ray [--ray-address auto]`` every run is a Ray task
(:mod:`billp.evaluation.executors`): all curves go at once, each still playing its train pass
before its test runs.

Test users are the first ``--test-users`` of the split's test users; train users are the
split's train users. Nothing is tuned on the test users.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from billp.common.atomic_io import write_text_atomic
from billp.common.exit_codes import EXIT_BAD_INPUT
from billp.config import LLM_AGENTS, ConfigError, RunConfig
from billp.evaluation.executors import (
    Executor,
    add_executor_arguments,
    executor_problem,
    running,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The curves' numbers and output live in curve_results and curve_report; the names marked
# "as" stay importable from this script.
from curve_report import LABELS as LABELS
from curve_report import LOOP_COLUMNS as LOOP_COLUMNS
from curve_report import TITLE, markdown, plot
from curve_results import (
    AGENTS,
    MEMORYLESS,
    Curve,
    agent_comparisons,
    paired_gain,
    point_numbers,
    pooled_figures,
    train_loop,
)
from curve_results import METRICS as METRICS
from curve_results import mean_interval as mean_interval
from curve_results import test_episodes as test_episodes
from paper_table import cluster_server_problem, start_executor
from pipeline import blocks
from pipeline.provenance import (
    Provenance,
    collect,
    command_line,
    header_markdown,
    source,
    write_results,
)
from table_runs import resolve, run_one, shared_server, test_user_offsets

WORLDS = ("matrix", "le")
POINTS = (0, 8, 24, 48)


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
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=FLAGS",
        help="A named set of simulate flags every curve is also played with (repeatable), e.g. "
        "--variant 'uninformed=--agent.knowledge uninformed'; each variant's runs live under "
        "--out-dir/NAME. Default: one variant, the other flags alone.",
    )
    parser.add_argument(
        "--seed-blocks",
        action="store_true",
        help="The i-th seed plays the i-th block of --test-users test users from "
        "--test-user-offset (as eval/paper_table.py does), so seeds add users; default: every "
        "seed plays the same test users.",
    )
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


def parse_variants(
    specs: list[str], passthrough: list[str]
) -> tuple[dict[str, list[str]], str | None]:
    """``--variant NAME=FLAGS`` values as name -> flags (``{"": []}`` for none), or a problem
    (a malformed, repeated or invalid variant)."""
    if not specs:
        return {"": []}, None
    variants: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, flags = spec.partition("=")
        name = name.strip()
        if not sep or not name or not name.replace("-", "").replace("_", "").isalnum():
            return (
                {},
                f"--variant {spec!r}: expected NAME=FLAGS with a name of letters, digits, - or _",
            )
        if name in variants:
            return {}, f"--variant {name!r} is given twice"
        try:
            variants[name] = shlex.split(flags)
            resolve([*passthrough, *variants[name]])
        except (ValueError, ConfigError, SystemExit) as exc:
            return {}, f"--variant {name!r}: invalid simulate flags: {exc}"
    return variants, None


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    made_from = source()
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
    variants, problem = parse_variants(args.variant, passthrough)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    knowledge = (
        ", ".join(
            f"{name}: {resolve([*passthrough, *flags]).agent.knowledge}"
            for name, flags in variants.items()
        )
        if args.variant
        else base.agent.knowledge
    )
    points = sorted(set(args.points))
    offsets = (
        test_user_offsets(args.seeds, args.test_users, base.test_user_offset)
        if args.seed_blocks
        else dict.fromkeys(args.seeds, base.test_user_offset)
    )

    def seed_flags(seed: int) -> list[str]:
        return ["--test-user-offset", str(offsets[seed])] if args.seed_blocks else []

    curves = [
        Curve(world, agent, seed, name)
        for world in args.worlds
        for name in variants
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
                            out_dir / c.variant if c.variant else out_dir,
                            [*passthrough, *variants[c.variant], *flags, *seed_flags(c.seed)],
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
                "variant": curve.variant,
                "test_user_offset": offsets[curve.seed],
                "points": point_numbers(curve),
                "gain": paired_gain(curve, 0, max(curve.tests)),
                "train_loop": train_loop(curve),
            }
        )
    command = command_line("learning_curve.py", argv)
    blocks_of_seeds = (
        "; ".join(
            f"seed {seed}: {blocks.describe(offsets[seed], args.test_users)}" for seed in args.seeds
        )
        if args.seed_blocks
        else blocks.describe(base.test_user_offset, args.test_users)
    )
    caption = (
        f"Points N = {', '.join(map(str, points))}; {args.test_users} fixed test users"
        f"{' per seed, a block each' if args.seed_blocks else ''}; "
        f"seeds {', '.join(map(str, args.seeds))}; test-phase learning off; react/actonly keep "
        "no memories (flat references)."
    )
    data = {
        "provenance": collect(
            command,
            time.monotonic() - started,
            model=base.llm.model
            if base.llm.backend != "scripted"
            else f"scripted test double ({base.llm.scripted_policy})",
            knowledge=knowledge,
            users=(f"train users 0-{max(points) - 1}; " if max(points) else "no train users; ")
            + blocks_of_seeds,
            started=made_from,
        ).model_dump(),
        "caption": caption,
        "failures": failures,
        "results": results,
        "comparisons": agent_comparisons([c for c in done if not c.errors]),
        "figures": pooled_figures([c for c in done if not c.errors]),
    }
    text = render(data)
    print(text)
    for failure in failures:
        console.print(f"[red]failed:[/red] {failure}")
    if args.json is not None:
        write_results(args.json, args.markdown, data, render)
    elif args.markdown is not None:
        write_text_atomic(args.markdown, text)
    if args.plot is not None and results:
        plot(results, args.plot)
    return 1 if failures else 0


def render(data: dict) -> str:
    """The markdown of a learning-curve JSON: the provenance header, then the tables."""
    header = header_markdown(TITLE, Provenance.model_validate(data["provenance"]))
    return (
        header
        + "\n"
        + markdown(data["results"], data["caption"], data.get("comparisons"), data.get("figures"))
    )


if __name__ == "__main__":
    raise SystemExit(main())
