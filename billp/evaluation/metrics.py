"""Long-term engagement metrics of a set of episodes.

Definitions (those of BiLLP, made explicit):

- **Len**: accepted recommendations per episode. The step on which the user quits is
  not accepted; an episode cut by the step cap accepts every step.
- **R_traj**: the summed reward of accepted steps.
- **R_each**: reward per accepted step over all episodes, ``sum(R_traj) / sum(Len)``
  (so that ``R_each = R_traj / Len`` on the means, as in the paper's tables).
- **coverage**: distinct items recommended divided by the catalogue size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def episode_length(record: Mapping[str, Any]) -> int:
    """Len of one episode record."""
    return int(record["length"])


def summarize(records: Sequence[Mapping[str, Any]], n_items: int) -> dict[str, Any]:
    """Len, R_each, R_traj, coverage and end reasons of ``records``."""
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
        "capped_share": round(sum(1 for r in records if r["truncated"] and not r["terminated"]) / count, 6),
        "fallbacks": int(sum(int(r.get("fallbacks", 0)) for r in records)),
    }


def summarize_episodes(records: Sequence[Mapping[str, Any]], n_items: int) -> dict[str, Any]:
    """Per-phase summaries; the headline numbers are the test phase's."""
    phases = {phase: [r for r in records if r["phase"] == phase] for phase in ("train", "test")}
    return {phase: summarize(rs, n_items) for phase, rs in phases.items()}
