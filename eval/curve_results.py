"""The curves of eval/learning_curve.py and their numbers: each point's test metrics with
bootstrap intervals, the paired gain between two points, and the train pass's loop statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from billp.evaluation.bootstrap import (
    BOOTSTRAP_RESAMPLES,
    Interval,
    bootstrap,
    episode_weights,
    make_rng,
    paired_comparison,
)
from billp.policy_registry import names, policy_spec

AGENTS: tuple[str, ...] = names("llm")
MEMORYLESS = frozenset(
    spec.name for spec in map(policy_spec, AGENTS) if not (spec.preset.macro or spec.preset.micro)
)
"""Agents that keep no memories: their curve is flat by construction."""
METRICS = ("length", "total_reward")


@dataclass
class Curve:
    """One (world, agent, seed, variant): the train pass and the test run of each point."""

    world: str
    agent: str
    seed: int
    variant: str = ""
    """The name of the ``--variant`` whose flags the curve's runs add ('' for none)."""
    train_run: Path | None = None
    tests: dict[int, Path] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


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
    return paired_runs(curve.tests[low], curve.tests[high])


def paired_runs(run_a: Path, run_b: Path) -> dict[str, Any]:
    """Paired difference (b - a) per metric over the test users both runs played."""
    return pooled_pairs([(run_a, run_b)])


def pooled_pairs(runs: list[tuple[Path, Path]]) -> dict[str, Any]:
    """Paired difference (b - a) per metric over the users of every pair of runs (each pair
    over the users both of its runs played; pairs of different seeds play different users)."""
    a_values: dict[str, list[float]] = {m: [] for m in METRICS}
    b_values: dict[str, list[float]] = {m: [] for m in METRICS}
    for run_a, run_b in runs:
        a, b = test_episodes(run_a), test_episodes(run_b)
        for user in sorted(set(a) & set(b)):
            for metric in METRICS:
                a_values[metric].append(a[user][metric])
                b_values[metric].append(b[user][metric])
    out = {}
    for metric in METRICS:
        joint = np.asarray(a_values[metric] + b_values[metric])
        out[metric] = paired_comparison(_mean_stat(joint), len(a_values[metric])).as_dict()
    return out


def train_loop(curve: Curve) -> dict[str, Any]:
    if curve.train_run is None:
        return {}
    summary = json.loads((curve.train_run / "summary.json").read_text(encoding="utf-8"))
    return summary.get("loop", {}).get("train", {})


def reference_point(curve: Curve) -> int:
    """The point at which ``curve`` is compared with another agent's last point: its last,
    or 0 for an agent that keeps no memories (its points are copies of N = 0)."""
    return 0 if curve.agent in MEMORYLESS else max(curve.tests)


def agent_comparisons(curves: list[Curve]) -> list[dict[str, Any]]:
    """At each curve's last point: the first agent of every (world, variant, seed) against
    each other agent of it, paired over their test users (first - other)."""
    groups: dict[tuple[str, str, int], list[Curve]] = {}
    for curve in curves:
        if curve.tests:
            groups.setdefault((curve.world, curve.variant, curve.seed), []).append(curve)
    out = []
    for (world, variant, seed), members in groups.items():
        first, *others = members
        for other in others:
            a_point, b_point = max(first.tests), reference_point(other)
            out.append(
                {
                    "world": world,
                    "variant": variant,
                    "seed": seed,
                    "agent": first.agent,
                    "point": a_point,
                    "other": other.agent,
                    "other_point": b_point,
                    **paired_runs(other.tests[b_point], first.tests[a_point]),
                }
            )
    return out


def figure_key(world: str, variant: str, agent: str) -> str:
    """The key of a (world, variant, agent) in :func:`pooled_figures` (no dots: goals in
    eval/targets.toml address figures by dotted paths)."""
    return "_".join(part for part in (world, variant, agent) if part)


def pooled_figures(curves: list[Curve]) -> dict[str, dict[str, Any]]:
    """Per (world, variant, agent), seeds pooled (their users paired within each seed): the
    gain from N = 0 to the last point (``gain``) and, for the first agent of each (world,
    variant), the difference at the last points from each other agent (``vs.<other>``, first
    - other). A seed missing a run leaves its users out of that figure."""
    by_key: dict[tuple[str, str], dict[str, dict[int, Curve]]] = {}
    for curve in curves:
        if curve.tests:
            agents = by_key.setdefault((curve.world, curve.variant), {})
            agents.setdefault(curve.agent, {})[curve.seed] = curve
    out: dict[str, dict[str, Any]] = {}
    for (world, variant), agents in by_key.items():
        first_agent, *others = agents
        for agent, seeds in agents.items():
            pairs = [
                (c.tests[0], c.tests[max(c.tests)])
                for c in seeds.values()
                if 0 in c.tests and max(c.tests) > 0
            ]
            entry: dict[str, Any] = {"seeds": sorted(seeds)}
            if pairs and agent not in MEMORYLESS:
                entry["gain"] = pooled_pairs(pairs)
            if agent == first_agent:
                entry["vs"] = {}
                for other in others:
                    versus = [
                        (ref.tests[reference_point(ref)], curve.tests[max(curve.tests)])
                        for seed, curve in seeds.items()
                        if (ref := agents[other].get(seed)) is not None
                    ]
                    entry["vs"][other] = pooled_pairs(versus)
            out[figure_key(world, variant, agent)] = entry
    return out
