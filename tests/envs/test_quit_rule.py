"""The quit rule: repeat, too similar within the window, low reward."""

from __future__ import annotations

import pytest

from billp.data import UnknownItemError
from billp.envs import QuitDecision, QuitRule

# item: 0 Action, 1 Action, 2 Comedy, 3 Action+Comedy, 4 Drama, 5 Horror, 6 no genres
GENRES = [
    frozenset({"Action"}),
    frozenset({"Action"}),
    frozenset({"Comedy"}),
    frozenset({"Action", "Comedy"}),
    frozenset({"Drama"}),
    frozenset({"Horror"}),
    frozenset(),
]


def rule(window: int = 4, similarity: float = 1.0) -> QuitRule:
    return QuitRule(GENRES, window=window, reward_threshold=2.0, similarity_threshold=similarity)


def test_first_recommendation_with_good_reward_stays() -> None:
    assert rule().decide(0, 4.0, []) == QuitDecision(quit=False, reason=None, similar_to=None)


def test_first_recommendation_with_low_reward_quits() -> None:
    decision = rule().decide(0, 1.9, [])
    assert decision == QuitDecision(quit=True, reason="low_reward", similar_to=None)


def test_reward_at_threshold_stays() -> None:
    assert not rule().decide(2, 2.0, [4]).quit


def test_repeat_quits_and_takes_priority() -> None:
    decision = rule().decide(4, 1.0, [4, 2])
    assert decision == QuitDecision(quit=True, reason="repeat", similar_to=4)


def test_same_genre_set_is_too_similar() -> None:
    decision = rule().decide(1, 5.0, [4, 0, 2])
    assert decision == QuitDecision(quit=True, reason="too_similar", similar_to=0)


def test_partial_overlap_is_not_too_similar_at_threshold_one() -> None:
    assert not rule().decide(3, 5.0, [0, 2]).quit


def test_lower_threshold_counts_partial_overlap_and_reports_most_recent() -> None:
    decision = rule(similarity=0.5).decide(3, 5.0, [0, 4, 2])
    assert decision.reason == "too_similar"
    assert decision.similar_to == 2  # the most recent match


def test_only_the_window_counts() -> None:
    recent = [0, 2, 4, 5, 6]  # item 0 is 5 recommendations back, outside W=4
    assert not rule(window=4).decide(1, 5.0, recent).quit
    assert not rule(window=4).decide(0, 5.0, recent).quit  # even a repeat
    assert rule(window=5).decide(0, 5.0, recent).reason == "repeat"
    short = [0, 2]  # fewer than W recommendations: all count
    assert rule(window=4).decide(1, 5.0, short).similar_to == 0


def test_window_zero_only_checks_reward() -> None:
    assert not rule(window=0).decide(0, 5.0, [0]).quit
    assert rule(window=0).decide(0, 1.0, [0]).reason == "low_reward"


def test_items_without_genres_are_identical_sets() -> None:
    assert rule().decide(6, 5.0, [6, 2]).reason == "repeat"
    other = QuitRule([frozenset(), frozenset()], 4, 2.0, 1.0)
    assert other.decide(1, 5.0, [0]).reason == "too_similar"


def test_invalid_arguments() -> None:
    with pytest.raises(UnknownItemError, match="item id 7 is not in the catalogue of 7 items"):
        rule().decide(7, 5.0, [])
    with pytest.raises(UnknownItemError, match="item id 99"):
        rule().decide(0, 5.0, [99])
    with pytest.raises(ValueError, match="window must be an integer >= 0"):
        QuitRule(GENRES, window=-1, reward_threshold=2.0, similarity_threshold=1.0)
    with pytest.raises(ValueError, match=r"similarity_threshold must be in \[0, 1\]"):
        QuitRule(GENRES, window=4, reward_threshold=2.0, similarity_threshold=1.5)
    with pytest.raises(ValueError, match="at least one item"):
        QuitRule([], window=4, reward_threshold=2.0, similarity_threshold=1.0)
