"""Goal verdicts: "met", "missed" or "not distinguishable", computed from an interval.

A goal says a figure should lie above (or below) a threshold. It is *met* only when the
whole interval lies strictly on the goal's side, *missed* only when the whole interval lies
strictly on the other side; an interval that contains or touches the threshold (a tie
inside its interval) is *not distinguishable*, never met. A figure without an interval (one
pair, a point estimate) gets "no interval": the words never outrun the evidence.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pipeline.specs import Goal


class Verdict(StrEnum):
    MET = "met"
    MISSED = "missed"
    NOT_DISTINGUISHABLE = "not distinguishable"
    NO_INTERVAL = "no interval"
    NO_FIGURE = "no figure"


def verdict(direction: str, threshold: float, low: float | None, high: float | None) -> Verdict:
    """The verdict of a goal ``figure <direction> threshold`` given the figure's interval."""
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', not {direction!r}")
    if low is None or high is None:
        return Verdict.NO_INTERVAL
    if low > high:
        raise ValueError(f"interval [{low}, {high}] is reversed")
    good, bad = (low > threshold, high < threshold)
    if direction == "below":
        good, bad = (high < threshold, low > threshold)
    if good:
        return Verdict.MET
    if bad:
        return Verdict.MISSED
    return Verdict.NOT_DISTINGUISHABLE


def lookup(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; ``None`` where a key is missing."""
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def goal_verdict(goal: Goal, data: dict[str, Any]) -> tuple[Verdict, str]:
    """A goal's verdict on a results JSON, and the figure as text
    (``"3.51 [2.9, 4.1]"``)."""
    estimate = lookup(data, goal.estimate)
    if not isinstance(estimate, int | float):
        return Verdict.NO_FIGURE, "no figure"
    low = lookup(data, goal.low) if goal.low else None
    high = lookup(data, goal.high) if goal.high else None
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        low = high = None
    result = verdict(goal.direction, goal.threshold, low, high)
    figure = f"{estimate:.3g}" + ("" if low is None else f" [{low:.3g}, {high:.3g}]")
    return result, figure
