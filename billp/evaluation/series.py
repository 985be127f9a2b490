"""The series an evaluation shows: metrics of each run and of each group of runs (seeds of one
experiment), with intervals.

A *run* gets intervals over its episodes. Runs that differ only in their seed (same config
otherwise, same templates) form a *group*, whose intervals come from the two-level
bootstrap over seeds and episodes (:func:`billp.evaluation.bootstrap.hierarchical_weights`);
its point estimates pool the episodes of all its runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from billp.evaluation.bootstrap import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    Interval,
    episode_weights,
    hierarchical_weights,
    make_rng,
)
from billp.evaluation.metrics import METRICS, EpisodeTable, compute_metrics, run_features
from billp.evaluation.survival import SurvivalCurve, kaplan_meier, weighted_survival
from billp.records.read import RunData

Scope = Literal["run", "group"]


@dataclass
class SeriesResult:
    """Metrics of one run or one group of runs."""

    label: str
    scope: Scope
    runs: list[RunData]
    table: EpisodeTable
    metrics: dict[str, Interval]
    survival: SurvivalCurve
    survival_low: np.ndarray
    survival_high: np.ndarray
    interval_over: Literal["episodes", "seeds"]

    @property
    def env(self) -> str:
        return self.runs[0].env

    @property
    def agent(self) -> str:
        return self.runs[0].agent

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def cap(self) -> int:
        return max(r.cap for r in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "scope": self.scope,
            "env": self.env,
            "agent": self.agent,
            "runs": [str(r.path) for r in self.runs],
            "seeds": self.seeds,
            "episodes": len(self.table),
            "interval_over": self.interval_over,
            "metrics": {name: interval.as_dict() for name, interval in self.metrics.items()},
            "survival": {
                **self.survival.as_dict(),
                "ci_low": [round(float(v), 6) for v in self.survival_low],
                "ci_high": [round(float(v), 6) for v in self.survival_high],
                "median": _none_if_nan(self.survival.median()),
            },
        }


def _none_if_nan(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


@dataclass
class Evaluation:
    """Every run's and every group's metrics."""

    phase: str
    runs: list[SeriesResult]
    groups: list[SeriesResult]
    resamples: int
    seed: int

    @property
    def has_seed_groups(self) -> bool:
        return any(len(g.runs) > 1 for g in self.groups)

    def series(self) -> list[SeriesResult]:
        """What plots and headline tables show: the groups (a one-run group is its run)."""
        return self.groups

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "bootstrap": {
                "resamples": self.resamples,
                "seed": self.seed,
                "confidence": CONFIDENCE,
                "interval": "percentile; coverage: bias-corrected percentile; "
                "groups of seeds: two-level bootstrap (runs, then episodes)",
            },
            "metric_definitions": {m.name: m.description for m in METRICS},
            "runs": [r.as_dict() for r in self.runs],
            "groups": [g.as_dict() for g in self.groups],
        }


def _survival_band(
    table: EpisodeTable, weights: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    if len(table) == 0:
        nan = np.full(horizon + 1, np.nan)
        return nan, nan
    curves = weighted_survival(table.durations, table.events, weights, horizon)
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(curves, [tail, 100.0 - tail], axis=0)
    return low, high


def _series(
    label: str,
    scope: Scope,
    runs: list[RunData],
    phase: str,
    resamples: int,
    seed: int,
) -> SeriesResult:
    per_run = [r.phase_episodes(phase) for r in runs]
    episodes = [e for eps in per_run for e in eps]
    table = EpisodeTable(episodes, run_features(runs[0]))
    rng = make_rng(seed)
    if len(runs) > 1:
        weights = hierarchical_weights([len(e) for e in per_run], resamples, rng)
        over: Literal["episodes", "seeds"] = "seeds"
        units = len(runs)
    else:
        weights = episode_weights(len(episodes), resamples, rng)
        over = "episodes"
        units = len(episodes)
    horizon = max(r.cap for r in runs)
    metrics = compute_metrics(table, weights, units)
    survival = kaplan_meier(table.durations, table.events, horizon)
    low, high = _survival_band(table, weights, horizon)
    return SeriesResult(label, scope, runs, table, metrics, survival, low, high, over)


def group_runs(runs: Sequence[RunData]) -> list[tuple[str, list[RunData]]]:
    """Runs grouped by experiment (config without seed and paths, and templates).

    Labels are ``env/agent``, with the experiment hash appended when two groups would
    otherwise share a label (e.g. the same agent with two prompt variants).
    """
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(run.experiment_key(), []).append(run)
    base = {key: f"{rs[0].env}/{rs[0].agent}" for key, rs in groups.items()}
    counts: dict[str, int] = {}
    for label in base.values():
        counts[label] = counts.get(label, 0) + 1
    out = []
    for key, rs in groups.items():
        label = base[key] if counts[base[key]] == 1 else f"{base[key]}@{key}"
        out.append((label, sorted(rs, key=lambda r: (r.seed, r.name))))
    return out


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """Short unique labels: ``env/agent/seedN``, then the experiment hash, then the name."""
    labels = [f"{r.env}/{r.agent}/seed{r.seed}" for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{label}@{r.experiment_key()}" for label, r in zip(labels, runs, strict=True)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({r.name})" for label, r in zip(labels, runs, strict=True)]
    return labels


def evaluate(
    runs: Sequence[RunData],
    phase: str = "test",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Evaluation:
    """Metrics with intervals for each run and each group of seeds.

    Raises:
        ValueError: no runs, or ``phase`` is not train/test/all.
    """
    if not runs:
        raise ValueError("no run directories to evaluate")
    if phase not in ("train", "test", "all"):
        raise ValueError(f"phase must be 'train', 'test' or 'all', got {phase!r}")
    labels = run_labels(runs)
    run_results = [
        _series(label, "run", [r], phase, resamples, seed)
        for label, r in zip(labels, runs, strict=True)
    ]
    group_results = [
        _series(label, "group", rs, phase, resamples, seed) for label, rs in group_runs(runs)
    ]
    return Evaluation(phase, run_results, group_results, resamples, seed)
