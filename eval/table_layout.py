"""The table of eval/paper_table.py: each cell's numbers from its runs, and the table as rich
output and as markdown."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from table_runs import Cell

from billp.config import RunConfig
from billp.evaluation.metrics import METRIC_BY_NAME, PAPER_METRICS
from billp.evaluation.series import evaluate
from billp.records.read import RunDirError, load_run

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
