"""Write an evaluation as metrics.json and CSV files, and print it as rich tables."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from billp.evaluation.bootstrap import Interval
from billp.evaluation.metrics import METRIC_BY_NAME, METRICS
from billp.evaluation.series import Evaluation, SeriesResult
from billp.summary.loop_stats import PhaseLoopStats, loop_stats_by_phase

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
SURVIVAL_CSV = "survival.csv"

HEADLINE: tuple[str, ...] = ("len", "r_each", "r_traj", "quit_share", "capped_share")
"""Columns of the first table: the paper's metrics and how episodes ended."""
BEYOND: tuple[str, ...] = (
    "coverage",
    "genre_entropy",
    "item_distance",
    "popularity_percentile",
    "novelty",
)
"""Columns of the second table: diversity, coverage, popularity."""


def format_interval(interval: Interval, digits: int) -> str:
    """``mean [low, high]``; ``-`` when undefined."""
    if not math.isfinite(interval.mean):
        return "-"
    text = f"{interval.mean:.{digits}f}"
    if math.isfinite(interval.low) and math.isfinite(interval.high):
        text += f" [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"
    return text


def metrics_table(title: str, series: Sequence[SeriesResult], columns: Sequence[str]) -> Table:
    """One row per series: label, episodes, seeds, then ``columns``."""
    table = Table(title=title, title_justify="left")
    table.add_column("series", overflow="fold")
    table.add_column("episodes", justify="right")
    table.add_column("seeds", justify="right")
    for name in columns:
        table.add_column(METRIC_BY_NAME[name].label, justify="right")
    for s in series:
        table.add_row(
            s.label,
            str(len(s.table)),
            ",".join(str(seed) for seed in s.seeds),
            *(format_interval(s.metrics[n], METRIC_BY_NAME[n].digits) for n in columns),
        )
    return table


def print_evaluation(evaluation: Evaluation, console: Console | None = None) -> None:
    """The runs' (and the seed groups') tables, with 95 % intervals."""
    console = console or Console()
    note = f"phase: {evaluation.phase}; mean [95% bootstrap CI], {evaluation.resamples} resamples"
    for columns, part in ((HEADLINE, "engagement"), (BEYOND, "diversity and popularity")):
        console.print(
            metrics_table(f"runs: {part} ({note}, CI over episodes)", evaluation.runs, columns)
        )
        if evaluation.has_seed_groups:
            console.print(
                metrics_table(
                    f"groups of seeds: {part} (CI over seeds and episodes)",
                    evaluation.groups,
                    columns,
                )
            )
    table = loop_table(evaluation, loop_stats_by_run(evaluation))
    if table is not None:
        console.print(table)


LOOP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("reflection_retrieval_rate", "reflections"),
    ("hint_rate", "hints"),
    ("hint_follow_rate", "followed"),
    ("critic_reuse_rate", "V reuse"),
    ("negative_advantage_share", "A<0"),
    ("critic_spearman", "V~return rho"),
)
"""Learning-loop statistics shown per run (see billp.summary.loop_stats)."""


def loop_stats_by_run(evaluation: Evaluation) -> dict[str, dict[str, PhaseLoopStats]]:
    """Run label -> phase -> the learning loop's statistics, from each run's steps."""
    return {
        series.label: {
            phase: stats
            for run in series.runs
            for phase, stats in loop_stats_by_phase(run.steps(), run.config.agent.gamma).items()
        }
        for series in evaluation.runs
    }


def loop_table(
    evaluation: Evaluation, by_run: dict[str, dict[str, PhaseLoopStats]]
) -> Table | None:
    """Per run and phase, the learning loop's statistics (None when no run has any)."""
    rows = [
        (label, phase, stats.model_dump())
        for label, phases in by_run.items()
        for phase, stats in phases.items()
        if phase in (evaluation.phase, "train") or evaluation.phase == "all"
    ]
    rows = [r for r in rows if r[2]["value_estimates"] or r[2]["reflection_retrieval_rate"]]
    if not rows:
        return None
    table = Table(title="learning loop per phase (rates; rho: Critic calibration)")
    for header in ("run", "phase", "steps", *(label for _, label in LOOP_COLUMNS)):
        table.add_column(header, justify="left" if header in ("run", "phase") else "right")
    for label, phase, stats in rows:
        cells = ["-" if stats[key] is None else f"{stats[key]:.2f}" for key, _ in LOOP_COLUMNS]
        table.add_row(label, phase, str(stats["steps"]), *cells)
    return table


def write_json(evaluation: Evaluation, out_dir: Path) -> Path:
    path = out_dir / METRICS_JSON
    payload = evaluation.as_dict()
    payload["loop"] = {
        label: {phase: stats.model_dump() for phase, stats in phases.items()}
        for label, phases in loop_stats_by_run(evaluation).items()
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def _csv_value(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.6g}"


def write_csv(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """``metrics.csv`` (one row per series and metric) and ``survival.csv`` (per step)."""
    metrics_path = out_dir / METRICS_CSV
    survival_path = out_dir / SURVIVAL_CSV
    every = [*evaluation.runs, *evaluation.groups]
    with metrics_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "scope",
                "label",
                "env",
                "agent",
                "seeds",
                "episodes",
                "interval_over",
                "metric",
                "mean",
                "ci_low",
                "ci_high",
                "n",
            ]
        )
        for s in every:
            for spec in METRICS:
                m = s.metrics[spec.name]
                writer.writerow(
                    [
                        s.scope,
                        s.label,
                        s.env,
                        s.agent,
                        ";".join(map(str, s.seeds)),
                        len(s.table),
                        s.interval_over,
                        spec.name,
                        _csv_value(m.mean),
                        _csv_value(m.low),
                        _csv_value(m.high),
                        m.n,
                    ]
                )
    with survival_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "scope",
                "label",
                "t",
                "survival",
                "ci_low",
                "ci_high",
                "at_risk",
                "events",
                "censored",
                "greenwood_se",
            ]
        )
        for s in every:
            c = s.survival
            for j, t in enumerate(c.times):
                writer.writerow(
                    [
                        s.scope,
                        s.label,
                        int(t),
                        _csv_value(float(c.survival[j])),
                        _csv_value(float(s.survival_low[j])),
                        _csv_value(float(s.survival_high[j])),
                        int(c.at_risk[j]),
                        int(c.events[j]),
                        int(c.censored[j]),
                        _csv_value(float(c.greenwood_se[j])),
                    ]
                )
    return [metrics_path, survival_path]
