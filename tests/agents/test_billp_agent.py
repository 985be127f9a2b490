"""BiLLP's learning rules and ablation switches, with scripted fake LLM replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billp.agents.billp_actor import scratchpad_window
from billp.agents.billp_agent import BiLLPPolicy
from billp.agents.billp_critic import DIGIT_TOP_LOGPROBS, digit_distribution
from billp.agents.billp_reflect import describe_outcome, genre_lift, session_facts
from billp.agents.billp_state import BiLLPRoles
from billp.agents.genre_order import planner_genres
from billp.agents.item_index import ItemIndex
from billp.agents.messages import (
    ActorChoice,
    CriticValue,
    Plan,
    Reflection,
    StepView,
    UserRules,
    actor_schema,
    critic_schema,
    plan_schema,
)
from billp.agents.prompts import PromptLibrary
from billp.agents.roles import Role, RoleSettings
from billp.agents.shortlist import ShortlistBuilder
from billp.config import AgentConfig, MemoryConfig
from billp.data import Catalogue
from billp.llm import Accounting, LLMRequest, LLMResponse, TokenUsage
from billp.llm.messages import TokenLogprobs
from billp.memory import AgentMemories, HashEmbedder
from billp.policy.protocol import EpisodeSummary, Transition

CRITIC_VALUE = 2


class FakeRoleLLMForTests:
    """Answers each role with a fixed reply; the actor and critic replies may be free text."""

    def __init__(self, actor_reply: str | None = None, critic_reply: str | None = None) -> None:
        self.actor_reply = actor_reply
        self.critic_reply = critic_reply
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        schema = request.response_schema or {}
        if request.role == "planner":
            text = json.dumps({"thought": "try a drama", "genres": ["Drama"]})
        elif request.role == "actor":
            ids = schema["properties"]["item_id"]["enum"]
            text = self.actor_reply or json.dumps({"item_id": ids[-1], "reason": "last"})
        elif request.role == "critic":
            text = self.critic_reply or json.dumps({"value": CRITIC_VALUE})
        else:
            text = json.dumps({"prefer": ["Drama"], "avoid": [], "reflection": "vary the genres"})
        return LLMResponse(
            text=text,
            usage=TokenUsage(prompt_tokens=10, completion_tokens=3),
            latency_s=0.0,
            model="fake",
        )

    async def aclose(self) -> None:
        return None

    def roles(self) -> list[str]:
        return [r.role for r in self.requests]


def make_policy(
    catalogue: Catalogue,
    tmp_path: Path,
    name: str,
    llm: FakeRoleLLMForTests,
    memory_config: MemoryConfig | None = None,
    **agent_fields: Any,
) -> BiLLPPolicy:
    embedder = HashEmbedder()
    index = ItemIndex(catalogue, embedder, cache_dir=tmp_path / "cache")
    shortlister = ShortlistBuilder(catalogue, index, np.ones(len(catalogue)))
    prompts, accounting = PromptLibrary(), Accounting()
    settings = RoleSettings(temperature=0.0, max_tokens=64)

    def role(role_name: str, out: type) -> Role:
        return Role(role_name, out, llm, prompts, accounting, settings)

    # These tests exercise the LLM Critic, an option: by default V(s) comes from the session.
    agent_fields.setdefault("value_source", "critic")
    config = AgentConfig(name=name, **agent_fields)  # type: ignore[arg-type]
    memories = (
        AgentMemories.open(tmp_path / "mem", embedder) if config.macro or config.micro else None
    )
    return BiLLPPolicy(
        config,
        memory_config or MemoryConfig(embedder="hash"),
        catalogue,
        BiLLPRoles(
            role("planner", Plan),
            role("actor", ActorChoice),
            role("critic", CriticValue),
            role("reflector", Reflection),
        ),
        index,
        shortlister,
        memories,
        embedder,
    )


def transition(item: int, reward: float, terminated: bool = False) -> Transition:
    obs = {"history": np.zeros(3, dtype=np.int64), "mask": np.zeros(3, dtype=np.int8)}
    return Transition(
        action=item,
        reward=reward,
        terminated=terminated,
        truncated=False,
        next_obs=obs,
        info={"similar_to": 0 if terminated else None},
    )


async def play(policy: BiLLPPolicy, rewards: list[float], quit_last: bool) -> tuple[Any, list[int]]:
    episode = policy.spawn("train-0000", seed=3)
    await episode.reset({"user_id": 1, "history": [0]})
    items = []
    for step, reward in enumerate(rewards):
        item = (await episode.act({}, {})).item_id
        items.append(item)
        last = step == len(rewards) - 1
        await episode.observe(transition(item, reward, terminated=quit_last and last))
    ended = await episode.end_episode(
        EpisodeSummary(
            user_id=1,
            items=items,
            rewards=rewards,
            terminated=quit_last,
            truncated=not quit_last,
            quit_reason="too_similar" if quit_last else None,
        )
    )
    return ended.writes, items


async def test_advantage_sign_and_td_targets(catalogue: Catalogue, tmp_path: Path) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm)
    writes, items = await play(policy, [1.0, 4.0, 3.0], quit_last=True)
    gamma = policy.config.gamma
    # V(s) = 2 everywhere from the critic; the quitting step books quit_value and V(s') = 0.
    # Values are discounted averages: target = (1 - gamma) * r + gamma * V(s').
    expected = [
        (1 - gamma) * 1.0 + gamma * CRITIC_VALUE,
        (1 - gamma) * 4.0 + gamma * CRITIC_VALUE,
        (1 - gamma) * policy.config.quit_value,
    ]
    assert [w.value for w in writes.critic] == pytest.approx(expected)
    assert [w.sign for w in writes.actor] == [1 if t - CRITIC_VALUE >= 0 else -1 for t in expected]
    assert [w.item_id for w in writes.actor] == items
    assert len(writes.reflections) == 1 and writes.reflections[0].entry.length == 2
    assert len(set(items)) == 3 and 0 not in items, "never recommends a seen item"


async def test_commit_then_memory_guides_the_next_episode(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm)
    writes, _ = await play(policy, [4.0, 4.0], quit_last=False)
    policy.commit(writes, "train-0000")
    policy.commit(writes, "train-0000")  # a repeated commit applies nothing twice
    assert policy.committed_episodes() == {"train-0000"}
    assert policy.memories is not None and len(policy.memories.reflections) == 1
    policy.reload()
    assert len(policy.memories.reflections) == 1
    # The same starting state: the critic memory answers without the Critic LLM.
    llm.requests.clear()
    episode = policy.spawn("test-0000", seed=4)
    await episode.reset({"user_id": 2, "history": [0]})
    (lesson,) = episode.reflections
    assert lesson.startswith("Prefer Drama. vary the genres Rated highest: ")  # + the facts
    decision = await episode.act({}, {})
    assert decision.trace.value is not None and decision.trace.value.source == "memory"
    assert "critic" not in llm.roles()


async def test_lessons_carry_their_genre_lift_into_the_next_planners_genre_order(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm, genre_order="lessons")
    writes, items = await play(policy, [4.5, 1.5], quit_last=False)
    (write,) = writes.reflections
    steps = [
        StepView(step=n + 1, title="", genres=list(catalogue[i].genres), reward=r)
        for n, (i, r) in enumerate(zip(items, [4.5, 1.5], strict=True))
    ]
    assert write.entry.genre_lift == genre_lift(steps)
    assert any(v > 0 for v in write.entry.genre_lift.values())
    assert any(v < 0 for v in write.entry.genre_lift.values())
    policy.commit(writes, "train-0000")
    episode = policy.spawn("test-0000", seed=4)
    await episode.reset({"user_id": 2, "history": [0]})
    assert episode.lesson_lift == write.entry.genre_lift
    llm.requests.clear()
    await episode.act({}, {})
    (planner,) = [r for r in llm.requests if r.role == "planner"]
    expected = planner_genres(catalogue, "lessons", [0], [], write.entry.genre_lift)
    assert expected != planner_genres(catalogue, "fresh", [0], [])
    assert f"Genres of the catalogue: {', '.join(expected)}." in planner.messages[-1].content


async def test_lessons_of_users_who_left_limit_the_next_shortlists_overlap(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(
        catalogue, tmp_path, "billp", llm, lesson_overlap_limit=True, shortlist_size=2
    )
    writes, items = await play(policy, [4.0, 4.0], quit_last=True)
    (write,) = writes.reflections
    a, b = (set(catalogue[i].genres) for i in items)
    assert write.entry.left_overlap == pytest.approx(len(a & b) / len(a | b))
    # A lesson whose user left after Drama followed by Drama (overlap 1.0).
    assert policy.memories is not None
    policy.memories.reflections.add(
        policy.state_text([0]),
        write.entry.model_copy(update={"left_overlap": 1.0}),
    )
    episode = policy.spawn("test-0000", seed=4)
    await episode.reset({"user_id": 2, "history": [0]})
    assert episode.overlap_limit == 1.0
    episode.recommended = [2]  # Drama: the other Drama (4) may not follow
    decision = await episode.act({}, {})
    assert 4 not in decision.trace.shortlist and len(decision.trace.shortlist) == 2
    assert decision.trace.loop.overlap_limit == 1.0  # recorded in the step's loop trace
    plain = make_policy(catalogue, tmp_path / "plain", "billp", FakeRoleLLMForTests())
    unlimited = plain.spawn("test-0000", seed=4)
    await unlimited.reset({"user_id": 2, "history": [0]})
    assert unlimited.overlap_limit is None
    unlimited.recommended = [2]
    assert 4 in (await unlimited.act({}, {})).trace.shortlist  # the plan's Drama
    fixed = make_policy(
        catalogue, tmp_path / "fixed", "billp", FakeRoleLLMForTests(), fixed_overlap_limit=1.0,
        shortlist_size=2,
    )  # fmt: skip
    control = fixed.spawn("test-0000", seed=4)
    await control.reset({"user_id": 2, "history": [0]})
    assert control.overlap_limit == 1.0  # with an empty memory
    control.recommended = [2]
    assert 4 not in (await control.act({}, {})).trace.shortlist


@pytest.mark.parametrize(
    ("name", "roles"),
    [
        ("billp", {"planner", "actor", "critic", "reflector"}),
        ("billp-no-macro", {"planner", "actor", "critic"}),
        ("billp-no-micro", {"planner", "actor", "reflector"}),
        ("reflexion", {"planner", "actor", "reflector"}),
        ("react", {"planner", "actor"}),
        ("actonly", {"actor"}),
    ],
)
async def test_ablations_call_only_their_roles(
    catalogue: Catalogue, tmp_path: Path, name: str, roles: set[str]
) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, name, llm)
    writes, _ = await play(policy, [4.0, 3.0], quit_last=False)
    assert set(llm.roles()) == roles
    assert bool(writes.actor) == ("critic" in roles)
    assert bool(writes.reflections) == ("reflector" in roles)


async def test_by_default_no_critic_is_called_and_micro_learning_still_writes(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm, value_source=AgentConfig().value_source)
    writes, _ = await play(policy, [4.0, 3.0], quit_last=False)
    assert set(llm.roles()) == {"planner", "actor", "reflector"}
    assert writes.actor and writes.critic  # advantages from the session's values


async def test_free_text_actor_reply_is_grounded(catalogue: Catalogue, tmp_path: Path) -> None:
    llm = FakeRoleLLMForTests(actor_reply="I would recommend Casablanca to this user.")
    policy = make_policy(catalogue, tmp_path, "react", llm)
    episode = policy.spawn("e", seed=1)
    await episode.reset({"user_id": 1, "history": [0]})
    decision = await episode.act({}, {})
    item = decision.item_id
    actor_call = next(c for c in decision.trace.calls if c.role == "actor")
    assert actor_call.stage == "repair"
    assert item not in {0}
    assert 0 <= item < len(catalogue)


class GarbageLLMForTests:
    """Replies to every role with the same arbitrary text."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(text=self.text, usage=TokenUsage(), latency_s=0.0, model="garbage")

    async def aclose(self) -> None:
        return None


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.from_regex(r'\{"item_id": -?\d{1,6}, "reason": [^}]{0,30}', fullmatch=True),
        st.just('{"value": "high"}'),
        st.just('```json\n{"thought": 3}\n```'),
    )
)
async def test_malformed_replies_never_crash_an_episode(
    catalogue: Catalogue, tmp_path: Path, text: str
) -> None:
    llm = GarbageLLMForTests(text)
    policy = make_policy(catalogue, tmp_path, "billp", llm)  # type: ignore[arg-type]
    writes, items = await play(policy, [4.0, 3.0], quit_last=False)
    assert all(0 <= i < len(catalogue) and i != 0 for i in items)
    stats = policy.roles.actor._accounting.snapshot()
    assert len(writes.critic) == 2 and len(writes.reflections) == 1
    # The same text comes back on a re-ask, so a call whose first reply is invalid fails
    # twice and then ends repaired or in the fallback: each such call is counted once.
    for role, role_stats in stats.items():
        failed_calls = role_stats["schema_failures"] // 2
        assert role_stats["schema_failures"] % 2 == 0, role
        assert role_stats["reasks"] == failed_calls, role
        assert role_stats["repairs"] + role_stats["fallbacks"] == failed_calls, role


async def test_actor_has_its_own_conversation_by_default(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    """The Actor's request is one message that starts with its fixed instructions and the
    history, the same at every step of an episode (a cached prefix); the plan is text."""
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "react", llm)
    episode = policy.spawn("e", seed=1)
    await episode.reset({"user_id": 1, "history": [0]})
    await episode.act({}, {})
    await episode.observe(transition(5, 4.0))
    await episode.act({}, {})
    actors = [r for r in llm.requests if r.role == "actor"]
    assert [len(r.messages) for r in actors] == [1, 1]
    first, second = (r.messages[0].content for r in actors)
    assert first.startswith("You are the Actor") and "Plan: Recommend Drama" in first
    head = first[: first.index("Plan:")]
    assert catalogue[0].label in head and second.startswith(head)
    candidates = first[first.index("Candidates:") :]
    assert "(19" not in candidates, "candidate lines show the title without the year"


async def test_actor_can_continue_the_planner_conversation(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    """As BiLLP's Action follows its Thought: with ``actor_follows_planner`` the Actor's
    request starts with the Planner's, and the history is not sent twice."""
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "react", llm, actor_follows_planner=True)
    episode = policy.spawn("e", seed=1)
    await episode.reset({"user_id": 1, "history": [0]})
    await episode.act({}, {})
    planner, actor = (
        next(r for r in llm.requests if r.role == role) for role in ("planner", "actor")
    )
    assert actor.messages[0] == planner.messages[0]
    assert actor.messages[1].role == "assistant" and "try a drama" in actor.messages[1].content
    assert actor.messages[2].content.startswith("You are the Actor")
    assert "history is in the Planner's turn above" in actor.messages[2].content

    solo_llm = FakeRoleLLMForTests()
    solo = make_policy(
        catalogue, tmp_path / "solo", "actonly", solo_llm, actor_follows_planner=True
    )
    solo_episode = solo.spawn("e", seed=1)
    await solo_episode.reset({"user_id": 1, "history": [0]})
    await solo_episode.act({}, {})
    assert [len(r.messages) for r in solo_llm.requests] == [1]


@pytest.mark.parametrize(
    ("steps", "length", "shown"),
    [
        (0, 8, []),
        (5, 8, [0, 1, 2, 3, 4]),
        (8, 8, list(range(8))),
        (9, 8, [4, 5, 6, 7, 8]),
        (12, 8, list(range(4, 12))),
        (13, 8, [8, 9, 10, 11, 12]),
        (4, 1, [3]),
        (4, 0, []),
    ],
)
def test_scratchpad_window_jumps(steps: int, length: int, shown: list[int]) -> None:
    assert scratchpad_window(list(range(steps)), length) == shown


@given(st.integers(0, 60), st.integers(1, 20))
def test_scratchpad_window_bounds_and_prefixes(steps: int, length: int) -> None:
    """At most ``length`` recent steps, ending with the last; and the next step's window
    extends this one unless the window jumped."""
    shown = scratchpad_window(list(range(steps)), length)
    assert len(shown) <= length and shown == list(range(steps - len(shown), steps))
    if steps:
        assert len(shown) >= min(steps, length - max(length // 2, 1) + 1)
    after = scratchpad_window(list(range(steps + 1)), length)
    jumped = after[:1] != shown[:1]
    assert jumped or after[: len(shown)] == shown


@pytest.mark.parametrize("remembered", [9.0, -7.5])
async def test_remembered_values_outside_the_scale_are_clipped(
    catalogue: Catalogue, tmp_path: Path, remembered: float
) -> None:
    """A stored value off the Critic's scale (an older scale, a hand-edited memory) never
    crashes the fallback: the Critic's reply is garbage here, so the fallback uses it."""
    llm = FakeRoleLLMForTests(critic_reply="no idea")
    config = MemoryConfig(embedder="hash", critic_reuse_similarity=1.0, critic_hint_similarity=-1)
    policy = make_policy(catalogue, tmp_path, "billp", llm, config)
    assert policy.memories is not None
    policy.memories.critic.record("a state unlike any other", remembered)
    episode = policy.spawn("e", seed=1)
    await episode.reset({"user_id": 1, "history": [0]})
    decision = await episode.act({}, {})
    value = decision.trace.value
    assert value is not None and value.call is not None
    assert value.source == "critic" and value.call.stage == "fallback"
    assert value.value == policy.clip_value(remembered)
    assert policy.rules.value_min <= value.value <= policy.rules.value_max


async def test_step_trace_records_the_loop(catalogue: Catalogue, tmp_path: Path) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm)
    episode = policy.spawn("e", seed=2)
    await episode.reset({"user_id": 1, "history": [0]})
    decision = await episode.act({}, {})
    observed = await episode.observe(transition(decision.item_id, 4.0))
    loop = decision.trace.with_observed(observed).loop
    gamma = policy.config.gamma
    assert loop.value_source == "critic" and loop.v == CRITIC_VALUE
    assert loop.td_target == pytest.approx((1 - gamma) * 4.0 + gamma * CRITIC_VALUE)
    assert loop.advantage == pytest.approx(loop.td_target - CRITIC_VALUE)
    assert loop.reward_booked == 4.0 and loop.hints == []


class LogprobCriticLLMForTests(FakeRoleLLMForTests):
    """A Critic that answers 4 and reports the digits' probabilities; the Planner answers with
    a numbered anchor. Records which requests were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight: list[str] = []
        self.overlaps: list[tuple[str, ...]] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        import asyncio

        self.in_flight.append(request.role)
        self.overlaps.append(tuple(sorted(self.in_flight)))
        await asyncio.sleep(0.01)
        self.in_flight.remove(request.role)
        if request.role == "planner":
            self.requests.append(request)
            return LLMResponse(
                text=json.dumps({"anchor": 1, "genres": ["Drama"], "avoid": []}), model="fake"
            )
        response = await super().complete(request)
        if request.role != "critic":
            return response
        probabilities = {"3": 0.25, "4": 0.5, "5": 0.25, "}": 1e-9}
        top = {token: float(np.log(q)) for token, q in probabilities.items()}
        return response.model_copy(
            update={
                "text": '{"value":4}',
                "logprobs": [
                    TokenLogprobs(token='{"', top={'{"': 0.0}),
                    TokenLogprobs(token="value", top={"value": 0.0}),
                    TokenLogprobs(token='":', top={'":': 0.0}),
                    TokenLogprobs(token="4", top=top),
                    TokenLogprobs(token="}", top={"}": 0.0}),
                ],
            }
        )


async def test_digit_critic_value_is_the_mean_under_the_token_probabilities(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    llm = LogprobCriticLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm, plan_anchor="number")
    episode = policy.spawn("train-0000", seed=3)
    await episode.reset({"user_id": 1, "history": [0]})
    decision = await episode.act({}, {})
    value = decision.trace.value
    assert value is not None and value.source == "critic"
    assert value.value == pytest.approx(4.0)  # 0.25 * 3 + 0.5 * 4 + 0.25 * 5
    assert value.distribution == pytest.approx([0, 0, 0, 0.25, 0.5, 0.25])
    critic = next(r for r in llm.requests if r.role == "critic")
    assert critic.sampling.top_logprobs == DIGIT_TOP_LOGPROBS
    assert critic.response_schema["properties"]["value"]["enum"] == [0, 1, 2, 3, 4, 5]
    assert decision.trace.plan is not None and decision.trace.plan.anchor == catalogue[0].label


def test_digit_distribution_without_a_digit_or_its_alternatives_is_none() -> None:
    assert digit_distribution([TokenLogprobs(token="x", top={"x": 0.0})], [0, 1]) is None
    assert digit_distribution([TokenLogprobs(token="7", top={"7": 0.0})], [0, 1]) is None
    found = digit_distribution([TokenLogprobs(token="1", top={"1": -0.1, " 0": -2.0})], [0, 1])
    assert found is not None and found[1] > found[0] and sum(found) == pytest.approx(1.0)


async def test_the_next_plan_is_asked_while_the_critic_values_the_new_state(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    llm = LogprobCriticLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm)
    episode = policy.spawn("train-0000", seed=3)
    await episode.reset({"user_id": 1, "history": [0]})
    first = await episode.act({}, {})
    assert ("critic", "planner") in llm.overlaps  # V(s) and the first plan went out together
    llm.overlaps.clear()
    await episode.observe(transition(first.item_id, 4.0))
    assert ("critic", "planner") in llm.overlaps  # V(s') and the next plan
    second = await episode.act({}, {})
    assert [c.role for c in second.trace.calls] == ["planner", "actor"]
    planner_requests = [r for r in llm.requests if r.role == "planner"]
    assert len(planner_requests) == 2  # the prefetched plan was used, not asked again


async def test_no_plan_is_asked_after_the_last_step(catalogue: Catalogue, tmp_path: Path) -> None:
    llm = LogprobCriticLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm)
    episode = policy.spawn("train-0000", seed=3)
    await episode.reset({"user_id": 1, "history": [0]})
    first = await episode.act({}, {})
    await episode.observe(transition(first.item_id, 1.0, terminated=True))
    assert [r.role for r in llm.requests].count("planner") == 1


def test_compact_replies_and_the_old_formats() -> None:
    assert actor_schema([3, 4])["required"] == ["item_id"]
    assert "reason" not in actor_schema([3, 4])["properties"]
    assert "reason" in actor_schema([3, 4], reason=True)["properties"]
    genres, titles = ["Drama", "Comedy"], ["A (1990)", "B (1991)"]
    assert "anchor" not in plan_schema(genres, titles, False)["properties"]
    assert "avoid" not in plan_schema(genres, titles, False)["properties"]
    assert "avoid" in plan_schema(genres, titles, False, avoid=True)["required"]
    assert plan_schema(genres, titles, False, "number")["properties"]["anchor"]["enum"] == [1, 2]
    assert plan_schema(genres, titles, False, "title")["properties"]["anchor"]["enum"] == titles
    assert Plan(anchor=2).with_anchor_title(titles).anchor == "B (1991)"
    assert Plan(anchor=9).with_anchor_title(titles).anchor == ""
    rules = UserRules()
    assert critic_schema(rules, "number")["properties"]["value"]["type"] == "number"


def test_lesson_facts_name_the_best_and_worst_genres_and_where_the_user_left() -> None:
    steps = [
        StepView(step=1, title="A", genres=["Drama"], reward=4.5),
        StepView(step=2, title="B", genres=["Action", "Sci-Fi"], reward=3.2),
        StepView(step=3, title="C", genres=["Action", "Thriller"], reward=1.5),
    ]
    assert session_facts(steps, left=True) == (
        "Rated highest: Drama 4.5, Sci-Fi 3.2. Rated lowest: Thriller 1.5, Action 2.4. "
        "Left after C (Action, Thriller) rated 1.5, which followed B (Action, Sci-Fi)."
    )
    assert "Left after" not in session_facts(steps, left=False)
    assert session_facts([], left=False) == ""
    # The same session as lifts: genre mean minus the session's mean (3.0667).
    assert genre_lift(steps) == pytest.approx(
        {"Action": -0.7167, "Drama": 1.4333, "Sci-Fi": 0.1333, "Thriller": -1.5667}, abs=1e-4
    )
    assert genre_lift([]) == {}


def test_uninformed_outcome_says_where_the_user_left_not_why(catalogue: Catalogue) -> None:
    quit = EpisodeSummary(
        user_id=1, items=[1, 2], rewards=[4.0, 1.0], terminated=True, truncated=False,
        quit_reason="low_reward",
    )  # fmt: skip
    informed = describe_outcome(quit, catalogue, {}, "informed")
    uninformed = describe_outcome(quit, catalogue, {}, "uninformed")
    assert "disliked" in informed
    assert uninformed == f"the user left right after recommendation 2, {catalogue[2].label}"


async def test_session_values_need_no_critic_call(catalogue: Catalogue, tmp_path: Path) -> None:
    llm = FakeRoleLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm, value_source="session")
    episode = policy.spawn("train-0000", seed=3)
    await episode.reset({"user_id": 1, "history": [0]})
    first = await episode.act({}, {})
    assert first.trace.value is not None and first.trace.value.source == "session"
    assert first.trace.value.value == policy.rules.typical_rating
    observed = await episode.observe(transition(first.item_id, 4.5))
    assert observed.critic is not None and observed.critic.next.value == 4.5
    assert "critic" not in llm.roles()


class BareReplyLLMForTests(FakeRoleLLMForTests):
    """Answers choice-constrained requests with their last choice (the critic: 4, with the
    digits' probabilities); JSON requests as its parent does."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if request.choices is None:
            return await super().complete(request)
        self.requests.append(request)
        if request.role == "critic":
            top = {"3": float(np.log(0.5)), "5": float(np.log(0.5))}
            return LLMResponse(text="4", model="fake", logprobs=[TokenLogprobs(token="4", top=top)])
        return LLMResponse(text=request.choices[-1], model="fake")


async def test_bare_replies_ask_for_choices_and_decide_the_same_things(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    llm = BareReplyLLMForTests()
    policy = make_policy(catalogue, tmp_path, "billp", llm, reply_format="bare")
    episode = policy.spawn("train-0000", seed=3)
    await episode.reset({"user_id": 1, "history": [0]})
    decision = await episode.act({}, {})
    by_role = {r.role: r for r in llm.requests}
    actor, critic, planner = by_role["actor"], by_role["critic"], by_role["planner"]
    assert actor.response_schema is None and critic.response_schema is None
    assert decision.item_id == int(actor.choices[-1])
    assert [int(c) for c in actor.choices] == decision.trace.shortlist
    assert critic.choices == ["0", "1", "2", "3", "4", "5"]
    assert decision.trace.value is not None and decision.trace.value.value == pytest.approx(4.0)
    genres = list(catalogue.genres)
    assert planner.choices[: len(genres)] == genres and ", ".join(genres[-2:]) in planner.choices
    assert decision.trace.plan is not None
    assert decision.trace.plan.genres == planner.choices[-1].split(", ")
    assert "Reply with only the id of one candidate." in actor.messages[-1].content
    assert "separated by a comma" in planner.messages[-1].content
    assert "Reply with only a whole number from 0 to 5." in critic.messages[-1].content


async def test_replies_with_several_fields_stay_json(catalogue: Catalogue, tmp_path: Path) -> None:
    llm = BareReplyLLMForTests()
    policy = make_policy(
        catalogue, tmp_path, "billp", llm, reply_format="bare", actor_reason=True, plan_avoid=True
    )
    episode = policy.spawn("train-0000", seed=3)
    await episode.reset({"user_id": 1, "history": [0]})
    await episode.act({}, {})
    by_role = {r.role: r for r in llm.requests}
    assert by_role["actor"].choices is None and by_role["planner"].choices is None
    assert by_role["critic"].choices is not None
