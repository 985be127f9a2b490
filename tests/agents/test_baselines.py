"""Non-LLM baselines: choices, traces, and greedy-diverse's agreement with the quit rule."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from billp.agents.baselines import (
    TRACE_SHORTLIST,
    GreedyDiversePolicy,
    GreedyPolicy,
    PopularityPolicy,
    RandomPolicy,
)
from billp.data import Catalogue, Item
from billp.envs import MatrixUserModel, QuitRule
from billp.policy.memoryless import RankedTrace, ScoredChoice
from billp.policy.protocol import Transition

GENRES: list[tuple[str, ...]] = [
    ("Action",),
    ("Comedy",),
    ("Drama",),
    ("Action", "Comedy"),
    ("Drama",),
    ("Horror",),
    (),
    ("Action", "Drama"),
    (),
    ("Comedy",),
]
# user 0's predicted ratings of the ten items
RATINGS = np.array([[4.0, 5.0, 3.0, 5.0, 2.0, 1.5, 4.5, 3.5, 4.5, 4.9]], dtype=np.float32)


@pytest.fixture()
def catalogue10() -> Catalogue:
    return Catalogue(
        [
            Item(item_id=i, raw_id=str(i + 1), title=f"Film {i}", year=2000, genres=g)
            for i, g in enumerate(GENRES)
        ]
    )


def quit_rule(catalogue: Catalogue, window: int = 2, threshold: float = 1.0) -> QuitRule:
    return QuitRule(
        catalogue.genre_sets, window=window, reward_threshold=2.0, similarity_threshold=threshold
    )


def play(
    policy: Any, steps: int, history: list[int] | None = None, seed: int = 0
) -> tuple[list[int], list[RankedTrace]]:
    """Act ``steps`` times for user 0, feeding back each action; items and step traces."""

    async def go() -> tuple[list[int], list[RankedTrace]]:
        episode = policy.spawn("test-0000", seed)
        await episode.reset({"user_id": 0, "history": history or []})
        items: list[int] = []
        traces: list[RankedTrace] = []
        for _ in range(steps):
            decision = await episode.act({}, {})
            item = decision.item_id
            items.append(item)
            observed = await episode.observe(
                Transition(
                    action=item, reward=3.0, terminated=False, truncated=False, next_obs={}, info={}
                )
            )
            trace = decision.trace.with_observed(observed)
            assert isinstance(trace, RankedTrace)
            traces.append(trace)
        return items, traces

    return asyncio.run(go())


def test_greedy_is_the_myopic_argmax_over_unseen_items(catalogue10: Catalogue) -> None:
    policy = GreedyPolicy(catalogue10, MatrixUserModel(RATINGS))
    items, traces = play(policy, 3, history=[1])
    # 1 is seen; 3 (5.0) then 9 (4.9), then 6 and 8 tie at 4.5: the lower id wins
    assert items == [3, 9, 6]
    assert traces[0].choice == ScoredChoice(item_id=3, predicted_reward=5.0)
    assert traces[0].shortlist is not None and traces[0].shortlist[:4] == [3, 9, 6, 8]
    assert len(traces[0].shortlist) == min(TRACE_SHORTLIST, 9)


def test_greedy_diverse_acceptable_set_is_the_quit_rules(catalogue10: Catalogue) -> None:
    rng = np.random.default_rng(0)
    for window, threshold in ((2, 1.0), (3, 0.5), (1, 0.3), (0, 1.0)):
        rule = quit_rule(catalogue10, window, threshold)
        policy = GreedyDiversePolicy(catalogue10, MatrixUserModel(RATINGS), rule)
        for _ in range(30):
            recent = [int(i) for i in rng.integers(0, 10, size=rng.integers(0, 5))]
            unseen = rng.random(10) < 0.8
            ok = policy.acceptable(recent, unseen)
            for item in range(10):
                expected = bool(unseen[item]) and not rule.decide(item, 5.0, recent).quit
                assert ok[item] == expected, (window, threshold, recent, item)


def test_greedy_diverse_avoids_similar_items(catalogue10: Catalogue) -> None:
    rule = quit_rule(catalogue10, window=2)
    policy = GreedyDiversePolicy(catalogue10, MatrixUserModel(RATINGS), rule)
    items, traces = play(policy, 6)
    for step, item in enumerate(items):
        assert not rule.decide(item, 5.0, items[:step]).quit, (step, items)
    # greedy alone would take 9 ({Comedy}) right after 1 ({Comedy}); greedy-diverse does not
    assert items[:2] == [1, 3]  # 1 (5.0) then 3 (5.0; {Action, Comedy} is not {Comedy})
    excluded = traces[1].excluded_by_quit_rule
    assert excluded is not None and excluded >= 1 and traces[1].no_safe_item is False


def test_greedy_diverse_falls_back_when_nothing_is_safe() -> None:
    catalogue = Catalogue(
        [
            Item(item_id=i, raw_id=str(i), title=f"F{i}", year=None, genres=("Drama",))
            for i in range(3)
        ]
    )
    rule = quit_rule(catalogue, window=2)
    policy = GreedyDiversePolicy(catalogue, MatrixUserModel(np.array([[3.0, 4.0, 5.0]])), rule)
    items, traces = play(policy, 2)
    assert items == [2, 1] and traces[1].no_safe_item is True


def test_popularity_trace_lists_the_next_most_popular(catalogue10: Catalogue) -> None:
    popularity = np.array([5, 50, 40, 30, 20, 10, 0, 0, 1, 2])
    items, traces = play(PopularityPolicy(catalogue10, popularity), 2, history=[1])
    assert items == [2, 3]
    assert traces[0].choice == ScoredChoice(item_id=2, popularity=40)
    assert traces[0].shortlist is not None and traces[0].shortlist[:3] == [2, 3, 4]
    with pytest.raises(ValueError, match="popularity has 3 entries for 10 items"):
        PopularityPolicy(catalogue10, np.array([1, 2, 3]))


def test_random_is_seeded_and_never_repeats(catalogue10: Catalogue) -> None:
    policy = RandomPolicy(catalogue10)
    first, _ = play(policy, 8, history=[0, 1], seed=3)
    again, _ = play(policy, 8, history=[0, 1], seed=3)
    other, _ = play(policy, 8, history=[0, 1], seed=4)
    assert first == again and first != other
    assert len(set(first)) == 8 and not {0, 1} & set(first)
    with pytest.raises(RuntimeError, match="no unseen catalogue item"):
        play(policy, 9, history=[0, 1])
