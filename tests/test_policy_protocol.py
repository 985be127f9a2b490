"""The typed agent protocol: traces returned by act/observe, and learning vs memoryless
policies."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from billp.agents.baselines import GreedyDiversePolicy, PopularityPolicy
from billp.agents.billp_agent import BiLLPPolicy
from billp.agents.billp_traces import BillpStepTrace, ObserveTrace, ValueEstimate
from billp.agents.loop_trace import LoopTrace, LoopUpdate
from billp.agents.messages import ActorChoice
from billp.agents.roles import CallTrace
from billp.policy import (
    LearningPolicy,
    MemoryWrites,
    RankedTrace,
    ScoredChoice,
    TraceRecord,
    learning,
)
from billp.records import EpisodeRecord
from billp.rl.policy import RLPolicy
from billp.runner.episodes import commit_wave
from billp.runner.plan import EpisodeSpec


def call(role: str) -> CallTrace:
    return CallTrace(
        role=role,
        template_hash="t",
        prompt_hash="p",
        raw=None,
        parsed={"value": 1.0},
        stage="valid",
        error=None,
        prompt_tokens=1,
        completion_tokens=1,
        cached_tokens=0,
        latency_s=0.0,
        calls=1,
    )


def test_a_trace_records_its_set_fields_in_order() -> None:
    trace = RankedTrace(choice=ScoredChoice(item_id=3, popularity=7), shortlist=[3, 1])
    assert trace.model_dump() == {"choice": {"item_id": 3, "popularity": 7}, "shortlist": [3, 1]}
    assert list(RankedTrace(choice=ScoredChoice(item_id=2)).model_dump()) == ["choice"]
    diverse = RankedTrace(
        choice=ScoredChoice(item_id=1, predicted_reward=4.5),
        shortlist=[1],
        excluded_by_quit_rule=0,
        no_safe_item=False,
    )
    assert list(diverse.model_dump()) == [
        "choice",
        "shortlist",
        "excluded_by_quit_rule",
        "no_safe_item",
    ]
    assert ObserveTrace(critic=None).model_dump() == {}  # None: not recorded, not null
    assert TraceRecord().model_dump() == {}


def test_value_estimates_record_their_keys_in_the_recorded_order() -> None:
    memory = ValueEstimate(source="memory", similarity=0.9, value=2.0)
    assert list(memory.model_dump()) == ["source", "similarity", "value"]
    critic = ValueEstimate(source="critic", value=2.0, call=call("critic"), similarity=0.5)
    assert list(critic.model_dump()) == ["source", "value", "call", "similarity"]
    assert critic.model_dump()["call"] == call("critic").model_dump()
    assert ValueEstimate(source="terminal", value=0.0).model_dump() == {
        "source": "terminal",
        "value": 0.0,
    }


def test_a_step_folds_observe_into_act() -> None:
    acted = BillpStepTrace(
        calls=[call("actor")],
        genre_hints=[],
        shortlist=[1],
        shortlist_sources={"1": "plan"},
        choice=ActorChoice(item_id=1),
        loop=LoopTrace(),
    )
    observed = ObserveTrace(
        calls=[call("critic")],
        loop=LoopUpdate(
            next_value_source="critic", v=1, v_next=2, reward_booked=3, td_target=2, advantage=1
        ),
    )
    step = acted.with_observed(observed)
    assert list(step.model_dump()) == [
        "calls",
        "genre_hints",
        "shortlist",
        "shortlist_sources",
        "choice",
        "loop",
    ]
    assert [c.role for c in step.calls] == ["actor", "critic"]
    assert list(step.model_dump()["loop"]) == list(LoopTrace.model_fields)
    assert step.loop.followed_hint is None and step.loop.advantage == 1
    assert acted.with_observed(ObserveTrace()) == acted
    ranked = RankedTrace(choice=ScoredChoice(item_id=1))
    assert ranked.with_observed(TraceRecord()) is ranked
    with pytest.raises(TypeError):
        ranked.with_observed(observed)  # a memoryless step has nowhere to put it
    with pytest.raises(TypeError):
        acted.with_observed(ranked)


def test_only_policies_with_memories_are_learning_policies() -> None:
    popularity = PopularityPolicy.__new__(PopularityPolicy)
    for memoryless in (PopularityPolicy, GreedyDiversePolicy, RLPolicy):
        assert not hasattr(memoryless, "commit") and not hasattr(memoryless, "reload")
    assert not isinstance(popularity, LearningPolicy) and learning(popularity) is None
    billp = BiLLPPolicy.__new__(BiLLPPolicy)
    billp.name = "billp"
    assert isinstance(billp, LearningPolicy) and learning(billp) is billp


class _Spy:
    """A policy that records commits (but is no learning policy: it cannot reload)."""

    name = "spy"

    def __init__(self) -> None:
        self.commits: list[str] = []

    def spawn(self, episode_key: str, seed: int) -> Any:
        raise NotImplementedError

    def commit(self, writes: MemoryWrites, episode_key: str) -> None:
        self.commits.append(episode_key)


class _LearningSpy(_Spy):
    def committed_episodes(self) -> set[str]:
        return set()

    def reload(self) -> None:
        return None


def _commit(policy: Any) -> list[str]:
    spec = EpisodeSpec(key="train-0000", phase="train", index=0, user_id=1, seed=0)
    record = EpisodeRecord(
        key=spec.key,
        phase="train",
        index=0,
        user_id=1,
        seed=0,
        items=[1],
        rewards=[3.0],
        steps=1,
        length=1,
        total_reward=3.0,
        terminated=False,
        truncated=True,
        quit_reason=None,
        fallbacks=0,
    )
    config = SimpleNamespace(
        agent=SimpleNamespace(is_llm=True), memory=SimpleNamespace(learn_during_test=False)
    )
    ctx = SimpleNamespace(policy=policy, config=config)
    commit_wave(ctx, [spec], {spec.key: record}, played={spec.key})  # type: ignore[arg-type]
    return policy.commits


def test_the_runner_commits_only_for_learning_policies() -> None:
    assert _commit(_LearningSpy()) == ["train-0000"]
    assert _commit(_Spy()) == []  # a commit method alone does not make a learning policy


def test_baseline_traces_are_recorded_as_before() -> None:
    """The dicts memoryless policies recorded before their traces were typed."""
    policy = PopularityPolicy.__new__(PopularityPolicy)
    policy.popularity = np.array([5, 9, 1])
    policy._order = np.argsort(-policy.popularity, kind="stable")
    trace = policy.choose(None, np.array([True, False, True]))  # type: ignore[arg-type]
    assert trace.model_dump() == {"choice": {"item_id": 0, "popularity": 5}, "shortlist": [0, 2]}
