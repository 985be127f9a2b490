"""Point estimates of a run's episodes for ``summary.json`` (Len, R_each, R_traj, coverage,
end reasons) and its throughput; ``python -m billp.eval`` adds intervals and more metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def episode_length(record: Mapping[str, Any]) -> int:
    """Len of one episode record."""
    return int(record["length"])


def summarize(records: Sequence[Mapping[str, Any]], n_items: int) -> dict[str, Any]:
    """Len, R_each, R_traj, coverage and end reasons of ``records`` (point estimates)."""
    count = len(records)
    if count == 0:
        return {"episodes": 0, "len": 0.0, "r_each": 0.0, "r_traj": 0.0, "coverage": 0.0}
    lengths = [episode_length(r) for r in records]
    returns = [float(r["total_reward"]) for r in records]
    accepted = sum(lengths)
    items = {int(i) for r in records for i in r["items"]}
    quits = sum(1 for r in records if r["terminated"])
    return {
        "episodes": count,
        "len": round(accepted / count, 6),
        "r_each": round(sum(returns) / accepted, 6) if accepted else 0.0,
        "r_traj": round(sum(returns) / count, 6),
        "coverage": round(len(items) / n_items, 6) if n_items else 0.0,
        "quit_share": round(quits / count, 6),
        "capped_share": round(
            sum(1 for r in records if r["truncated"] and not r["terminated"]) / count, 6
        ),
        "fallbacks": int(sum(int(r.get("fallbacks", 0)) for r in records)),
    }


def throughput(episodes_played: int, wall_s: float) -> dict[str, float | int]:
    """Simulated users per hour of this process's wall clock (one episode plays one user;
    episodes recovered by ``--resume`` are not counted). The rate is that of the rounded
    seconds written beside it, so the two agree."""
    wall = round(wall_s, 3)
    return {
        "episodes_played": episodes_played,
        "wall_s": wall,
        "users_per_hour": round(episodes_played * 3600.0 / wall, 2) if wall > 0 else 0.0,
    }


def summarize_episodes(records: Sequence[Mapping[str, Any]], n_items: int) -> dict[str, Any]:
    """Per-phase summaries for ``summary.json``; the headline numbers are the test phase's.

    Point estimates only; ``python -m billp.eval`` adds intervals and the other metrics.
    """
    phases = {phase: [r for r in records if r["phase"] == phase] for phase in ("train", "test")}
    return {phase: summarize(rs, n_items) for phase, rs in phases.items()}
