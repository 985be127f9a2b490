"""Goal verdicts: met and missed need the whole interval on one side; a tie is not met."""

from __future__ import annotations

import pytest
from pipeline.specs import Goal
from pipeline.verdict import Verdict, goal_verdict, verdict


@pytest.mark.parametrize(
    ("direction", "low", "high", "expected"),
    [
        ("above", 1.1, 1.5, Verdict.MET),
        ("above", 0.5, 0.9, Verdict.MISSED),
        ("above", 0.9, 1.2, Verdict.NOT_DISTINGUISHABLE),
        ("above", 1.0, 1.2, Verdict.NOT_DISTINGUISHABLE),  # touches the threshold: a tie
        ("above", 0.8, 1.0, Verdict.NOT_DISTINGUISHABLE),
        ("above", 1.0, 1.0, Verdict.NOT_DISTINGUISHABLE),
        ("below", 0.5, 0.9, Verdict.MET),
        ("below", 1.1, 1.5, Verdict.MISSED),
        ("below", 0.9, 1.1, Verdict.NOT_DISTINGUISHABLE),
        ("above", None, None, Verdict.NO_INTERVAL),
        ("above", 1.2, None, Verdict.NO_INTERVAL),
    ],
)
def test_verdict(direction: str, low: float | None, high: float | None, expected: Verdict) -> None:
    assert verdict(direction, 1.0, low, high) is expected


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="reversed"):
        verdict("above", 1.0, 2.0, 1.5)
    with pytest.raises(ValueError, match="direction"):
        verdict("sideways", 1.0, 0.0, 2.0)


def test_goal_on_a_results_json() -> None:
    goal = Goal(
        name="users/hour",
        estimate="ab.uph.ratio",
        low="ab.uph.low",
        high="ab.uph.high",
        direction="above",
        threshold=1.0,
    )
    met = {"ab": {"uph": {"ratio": 1.4, "low": 1.2, "high": 1.6}}}
    assert goal_verdict(goal, met) == (Verdict.MET, "1.4 [1.2, 1.6]")
    tie = {"ab": {"uph": {"ratio": 1.4, "low": 0.95, "high": 1.6}}}
    assert goal_verdict(goal, tie)[0] is Verdict.NOT_DISTINGUISHABLE
    point = {"ab": {"uph": {"ratio": 3.5, "low": None, "high": None}}}
    assert goal_verdict(goal, point) == (Verdict.NO_INTERVAL, "3.5")
    assert goal_verdict(goal, {"ab": {}})[0] is Verdict.NO_FIGURE
