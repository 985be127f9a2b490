"""Loop statistics from hand-made step records."""

from __future__ import annotations

from typing import Any

import pytest

from billp.agents.billp_traces import BillpStepTrace, ReflectionTrace
from billp.agents.loop_trace import LoopTrace
from billp.agents.messages import ActorChoice
from billp.policy.memoryless import RankedTrace, ScoredChoice
from billp.records import EpisodeTraceRecord, StepRecord, StepTrace
from billp.summary.loop_stats import loop_stats_by_phase, phase_loop_stats, realised_returns


def test_realised_returns_are_discounted_averages() -> None:
    # gamma = 0.5: G_2 = 0.5*0; G_1 = 0.5*4 + 0.5*G_2; G_0 = 0.5*2 + 0.5*G_1.
    assert realised_returns([2.0, 4.0, 0.0], 0.5) == pytest.approx([2.0, 2.0, 0.0])


def _line(episode: str, step: int, trace: StepTrace) -> StepRecord:
    return StepRecord(
        episode=episode, phase="test", user_id=1, step=step, action=1, reward=1.0,
        terminated=False, truncated=False, quit_reason=None, similar_to=None, env_step_s=0.0,
        trace=trace,
    )  # fmt: skip


def _step(episode: str, step: int, **loop: Any) -> StepRecord:
    trace = BillpStepTrace(
        genre_hints=[],
        shortlist=[1],
        shortlist_sources={"1": "plan"},
        choice=ActorChoice(item_id=1),
        loop=LoopTrace(**loop),
    )
    return _line(episode, step, trace)


def test_phase_statistics_count_each_link() -> None:
    lines = [
        _step(
            "e1", 1,
            reflections=[{"episode": "train-0000", "similarity": 0.8}],
            hints=[{"item_id": 5, "sign": 1, "weight": 0.9}],
            followed_hint=1, value_source="critic", v=3.0, reward_booked=4.0, advantage=0.5,
        ),
        _step(
            "e1", 2,
            reflections=[{"episode": "train-0000", "similarity": 0.8}],
            value_source="memory", v=2.0, reward_booked=0.0, advantage=-2.0,
        ),
        _step(
            "e2", 1,
            hints=[{"item_id": 7, "sign": -1, "weight": -0.5}],
            followed_hint=-1, value_source="critic", v=1.0, reward_booked=0.0, advantage=-1.0,
        ),
        EpisodeTraceRecord(
            episode="e1", phase="test",
            trace=ReflectionTrace(outcome="quit", reflection="x", calls=[]),
        ),
    ]  # fmt: skip
    stats = phase_loop_stats(lines, gamma=0.5)
    assert stats.episodes == 2 and stats.steps == 3
    assert stats.reflection_retrieval_rate == 0.5
    assert stats.reflection_similarity_mean == pytest.approx(0.8)
    assert stats.hint_rate == pytest.approx(2 / 3, abs=1e-4)
    assert stats.hint_follow_rate == 0.5 and stats.followed_discouraged == 1
    assert stats.critic_reuse_rate == pytest.approx(1 / 3, abs=1e-4)
    assert stats.negative_advantage_share == pytest.approx(2 / 3, abs=1e-4)
    assert stats.minority_advantage_share == pytest.approx(1 / 3, abs=1e-4)
    # V = (3, 2, 1) vs realised returns (2, 0, 0): ranks agree except one tie.
    assert stats.critic_spearman is not None and stats.critic_spearman > 0.8
    assert set(loop_stats_by_phase(lines, 0.5)) == {"test"}


def test_no_loop_records_give_empty_rates() -> None:
    stats = phase_loop_stats([_line("e", 1, RankedTrace(choice=ScoredChoice(item_id=1)))], 0.5)
    assert stats.hint_rate == 0.0 and stats.hint_follow_rate is None
    assert stats.critic_spearman is None and stats.minority_advantage_share is None
