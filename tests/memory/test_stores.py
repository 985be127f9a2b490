"""Reflection, actor and critic memories, and the three under one root."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from billp.memory.embedders import HashEmbedder, MiniLMEmbedder
from billp.memory.folder_format import MemoryStoreError
from billp.memory.stores import (
    ActorHints,
    ActorMemory,
    AgentMemories,
    CriticMemory,
    ReflectionEntry,
    ReflectionMemory,
)

EMBEDDER = HashEmbedder(dim=256)


def _reflection(episode: str, text: str = "lesson") -> ReflectionEntry:
    return ReflectionEntry(text=text, user_id=7, episode=episode, length=12, total_reward=40.5)


# ---------------------------------------------------------------- reflections


def test_reflections_nearest_and_recent(tmp_path: Path) -> None:
    memory = ReflectionMemory(tmp_path, EMBEDDER)
    situations = [
        "likes animation comedy children films",
        "likes crime thriller heist films",
        "likes animation comedy family films",
        "likes war documentaries",
    ]
    for number, situation in enumerate(situations):
        memory.add(situation, _reflection(f"ep{number}"))
    memory.add(situations[0], _reflection("ep4", "a second lesson, same situation"))
    assert len(memory) == 5

    nearest = memory.retrieve("likes animation comedy children films", k=3, mode="nearest")
    assert {entry.episode for entry in nearest[:2]} == {"ep0", "ep4"}  # same situation, tied
    assert nearest[2].episode == "ep2"

    recent = memory.retrieve("ignored for recency", k=2, mode="recent")
    assert [entry.episode for entry in recent] == ["ep3", "ep4"]
    assert memory.retrieve("anything", k=0, mode="nearest") == []
    assert memory.retrieve("anything", k=0, mode="recent") == []
    with pytest.raises(ValueError, match="'nearest', 'recent' or 'useful'"):
        memory.retrieve("anything", k=1, mode="random")  # type: ignore[arg-type]


def test_useful_reflections_are_the_best_rewarded_of_the_nearest(tmp_path: Path) -> None:
    memory = ReflectionMemory(tmp_path, EMBEDDER)
    situations = [
        "likes animation comedy children films",
        "likes animation comedy family films",
        "likes animation drama films",
        "likes war documentaries",
    ]
    rewards = [10.0, 5.0, 30.0, 99.0]
    for number, (situation, reward) in enumerate(zip(situations, rewards, strict=True)):
        entry = _reflection(f"ep{number}").model_copy(update={"total_reward": reward})
        memory.add(situation, entry)
    # k = 1 ranks the 3 nearest by reward: the war documentaries (99) are not among them.
    (best,) = memory.retrieve("likes animation comedy children films", k=1, mode="useful")
    assert best.episode == "ep2"
    two = memory.retrieve("likes animation comedy children films", k=2, mode="useful")
    assert [entry.episode for entry in two] == ["ep3", "ep2"]  # the pool of 6 holds all 4


def test_reflection_entry_validation() -> None:
    with pytest.raises(ValueError, match="total_reward"):
        ReflectionEntry(text="t", user_id=1, episode="e", length=1, total_reward=math.nan)


def test_reflections_retrieve_by_meaning_with_minilm(tmp_path: Path) -> None:
    memory = ReflectionMemory(tmp_path, MiniLMEmbedder())
    memory.add("The user enjoys animated family movies for kids", _reflection("cartoons"))
    memory.add("The user watches gritty crime and gangster films", _reflection("crime"))
    memory.add("The user likes romantic comedies", _reflection("romance"))
    nearest = memory.retrieve("children's cartoon with toys", k=2, mode="nearest")
    assert nearest[0].episode == "cartoons"
    assert len(nearest) == 2


# ---------------------------------------------------------------- actor


def test_actor_record_upserts_the_state(tmp_path: Path) -> None:
    memory = ActorMemory(tmp_path, EMBEDDER)
    memory.record("state one", 5, 1)
    memory.record("state one", 6, -1)
    memory.record("state one", 5, -1)  # overwrites the earlier sign
    assert len(memory) == 1
    entry = memory.memory.get("state one")
    assert entry is not None and entry.signs == {5: -1, 6: -1}
    with pytest.raises(ValueError, match=r"item 5 must be \+1 or -1, got 0"):
        memory.record("state one", 5, 0)


def test_actor_hints_sum_similarity_weighted_signs(tmp_path: Path) -> None:
    memory = ActorMemory(tmp_path, EMBEDDER)
    query = "recent animation comedy children adventure"
    states = {
        "recent animation comedy children adventure": {1: 1, 2: -1, 3: 1},
        "recent animation comedy children musical": {1: 1, 2: -1, 4: -1, 3: -1},
        "recent animation comedy drama": {4: 1, 5: 1},
        "horror slasher gore night": {2: 1, 6: 1},
    }
    for state, signs in states.items():
        for item, sign in signs.items():
            memory.record(state, item, sign)

    vectors = EMBEDDER.embed([query, *states])
    similarity = dict(zip(states, (vectors[1:] @ vectors[0]).tolist(), strict=True))
    threshold = 0.5
    assert similarity["recent animation comedy drama"] >= threshold
    assert similarity["horror slasher gore night"] < threshold
    totals: dict[int, float] = {}
    for state, signs in states.items():
        if similarity[state] >= threshold:
            for item, sign in signs.items():
                totals[item] = totals.get(item, 0.0) + sign * similarity[state]
    ranked = sorted(totals, key=lambda item: (-abs(totals[item]), item))
    expected = ActorHints(
        encouraged=[item for item in ranked if totals[item] > 0],
        discouraged=[item for item in ranked if totals[item] < 0],
    )

    hints = memory.hints(query, top_k=10, min_similarity=threshold)
    assert (hints.encouraged, hints.discouraged) == (expected.encouraged, expected.discouraged)
    assert hints.weights == pytest.approx({item: totals[item] for item in ranked}, abs=1e-6)
    assert hints.encouraged[0] == 1 and hints.discouraged[0] == 2
    assert 6 not in hints.encouraged  # only the dissimilar horror state mentions it
    assert 3 in hints.encouraged  # +1 from the exact state outweighs -1 from a less similar one

    only_nearest = memory.hints(query, top_k=1, min_similarity=threshold)
    assert (only_nearest.encouraged, only_nearest.discouraged) == ([1, 3], [2])
    assert memory.hints(query, top_k=10, min_similarity=1.01) == ActorHints(
        encouraged=[], discouraged=[]
    )


def test_actor_hints_on_empty_memory(tmp_path: Path) -> None:
    hints = ActorMemory(tmp_path, EMBEDDER).hints("anything", top_k=5, min_similarity=0.0)
    assert hints == ActorHints(encouraged=[], discouraged=[])


# ---------------------------------------------------------------- critic


def test_critic_record_and_lookup(tmp_path: Path) -> None:
    memory = CriticMemory(tmp_path, EMBEDDER)
    assert memory.lookup("state a", min_similarity=0.0) is None
    memory.record("user watched comedy comedy drama", 3.5)
    memory.record("user watched comedy comedy drama", 4.25)  # latest TD target wins
    memory.record("user watched horror slasher", -5.0)
    assert len(memory) == 2
    entry = memory.memory.get("user watched comedy comedy drama")
    assert entry is not None and (entry.value, entry.visits) == (4.25, 2)

    found = memory.lookup("user watched comedy comedy drama", min_similarity=0.99)
    assert found is not None
    assert found[0] == pytest.approx(1.0) and found[1] == 4.25
    assert memory.lookup("completely unrelated words here", min_similarity=0.99) is None
    near = memory.lookup("user watched comedy drama", min_similarity=0.5)
    assert near is not None and near[1] == 4.25 and 0.5 <= near[0] < 1.0
    with pytest.raises(ValueError, match="must be finite"):
        memory.record("state", math.inf)


# ---------------------------------------------------------------- all three


def _write_some(memories: AgentMemories, episode: str) -> None:
    memories.reflections.add(f"situation of {episode}", _reflection(episode))
    memories.actor.record(f"state of {episode}", 3, 1)
    memories.critic.record(f"state of {episode}", 2.5)


def test_agent_memories_save_and_reopen(tmp_path: Path) -> None:
    root = tmp_path / "run"
    memories = AgentMemories.open(root, EMBEDDER)
    assert memories.committed == set()
    _write_some(memories, "ep1")
    memories.save("ep1")
    for sub in ("reflections", "actor", "critic"):
        assert (root / sub / "meta.json").is_file()
    _write_some(memories, "ep2")
    memories.save()  # saved but not marked committed

    reopened = AgentMemories.open(root, EMBEDDER)
    assert reopened.committed == {"ep1"}
    assert len(reopened.reflections) == 2 and len(reopened.actor) == 2
    assert reopened.critic.lookup("state of ep2", min_similarity=0.99) == (
        pytest.approx(1.0),
        2.5,
    )
    hints = reopened.actor.hints("state of ep1", top_k=1, min_similarity=0.9)
    assert hints.encouraged == [3]


def test_agent_memories_commit_needs_all_three(tmp_path: Path) -> None:
    memories = AgentMemories.open(tmp_path, EMBEDDER)
    _write_some(memories, "ep1")
    memories.save("ep1")
    _write_some(memories, "ep2")
    memories.reflections.memory.save(["ep2"])  # a crash before actor and critic were saved
    reopened = AgentMemories.open(tmp_path, EMBEDDER)
    assert reopened.committed == {"ep1"}


def test_agent_memories_refuse_another_embedder(tmp_path: Path) -> None:
    memories = AgentMemories.open(tmp_path, EMBEDDER)
    _write_some(memories, "ep1")
    memories.save("ep1")
    with pytest.raises(MemoryStoreError, match=r"reflections/meta\.json"):
        AgentMemories.open(tmp_path, HashEmbedder(dim=32))
