from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from billp.agents import reward_shuffle
from billp.agents.billp_reflect import genre_lift
from billp.agents.messages import StepView
from billp.config import MemoryConfig
from billp.data import Catalogue
from billp.envs import genre_jaccard
from tests.agents.test_billp_agent import FakeRoleLLMForTests, make_policy, play

REWARDS = [4.5, 1.5, 3.0]
UNROUNDED = [3.14159265, 2.71828183, 4.12345678, 1.41421356]
"""Rewards whose session means do not end at the fourth decimal."""


def shuffle_policy(catalogue: Catalogue, tmp_path: Path, **fields: object):
    config = MemoryConfig(embedder="hash", shuffle_rewards=True)
    return make_policy(catalogue, tmp_path, "billp", FakeRoleLLMForTests(), config, **fields)


@pytest.mark.parametrize("value_source", ["session", "critic"])
async def test_the_identity_permutation_rebuilds_the_same_writes(
    catalogue: Catalogue, tmp_path: Path, value_source: str
) -> None:
    """Redoing the TD updates from the log with unpermuted rewards gives the writes the
    episode made as it played (the rebuild is the same arithmetic)."""
    plain = make_policy(
        catalogue, tmp_path / "a", "billp", FakeRoleLLMForTests(), value_source=value_source
    )
    real, _ = await play(plain, UNROUNDED, quit_last=True)
    identity = shuffle_policy(catalogue, tmp_path / "b", value_source=value_source)
    with mock.patch.object(reward_shuffle, "permutation", lambda ep, n, salt="": np.arange(n)):
        rebuilt, _ = await play(identity, UNROUNDED, quit_last=True)
    assert rebuilt.actor == real.actor
    assert rebuilt.critic == real.critic
    assert rebuilt.reflections[0].entry == real.reflections[0].entry


async def test_shuffled_memories_keep_the_rewards_but_not_their_steps(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    plain = make_policy(catalogue, tmp_path / "a", "billp", FakeRoleLLMForTests())
    real, items = await play(plain, REWARDS, quit_last=False)
    swapped = lambda ep, n, salt="": np.array([1, 0, 2])  # noqa: E731 - steps 1 and 2 trade rewards
    with mock.patch.object(reward_shuffle, "permutation", swapped):
        policy = shuffle_policy(catalogue, tmp_path / "b", value_source="session")
        shuffled, same_items = await play(policy, REWARDS, quit_last=False)
    assert same_items == items, "the episode is played with the real rewards"
    gamma = policy.config.gamma
    # Session values after the permuted rewards 1.5, 4.5, 3.0: V(s0) = typical rating,
    # V(s1) = 1.5, V(s2) = 3.0, V(s3) = 3.0.
    v_next = [1.5, 3.0, 3.0]
    expected = [(1 - gamma) * r + gamma * v for r, v in zip([1.5, 4.5, 3.0], v_next, strict=True)]
    assert [w.value for w in shuffled.critic] == pytest.approx(expected, abs=1e-6)
    # The lesson's lifts are those of the permuted session, not of the real one.
    steps = [
        StepView(step=n + 1, title="", genres=list(catalogue[i].genres), reward=r)
        for n, (i, r) in enumerate(zip(items, [1.5, 4.5, 3.0], strict=True))
    ]
    assert shuffled.reflections[0].entry.genre_lift == genre_lift(steps)
    assert shuffled.reflections[0].entry.genre_lift != real.reflections[0].entry.genre_lift


def test_the_permutation_is_seeded_by_the_episode() -> None:
    class Episode:
        seed = 7

    first = reward_shuffle.permutation(Episode(), 10)  # type: ignore[arg-type]
    assert sorted(first) == list(range(10))
    assert list(first) == list(reward_shuffle.permutation(Episode(), 10))  # type: ignore[arg-type]


async def test_shuffled_leaving_measures_another_pair_of_steps(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    config = MemoryConfig(embedder="hash", shuffle_leaving=True)
    policy = make_policy(catalogue, tmp_path, "billp", FakeRoleLLMForTests(), config)
    # Three steps: the one pair before the last is (step 1, step 2).
    writes, items = await play(policy, REWARDS, quit_last=True)
    genres = [frozenset(catalogue[i].genres) for i in items]
    assert writes.reflections[0].entry.left_overlap == round(genre_jaccard(genres[1], genres[0]), 4)
    plain = make_policy(catalogue, tmp_path / "plain", "billp", FakeRoleLLMForTests())
    real, same = await play(plain, REWARDS, quit_last=True)
    assert same == items
    assert real.reflections[0].entry.left_overlap == round(genre_jaccard(genres[2], genres[1]), 4)
    assert genre_jaccard(genres[1], genres[0]) != genre_jaccard(genres[2], genres[1])

    two_steps = make_policy(catalogue, tmp_path / "two", "billp", FakeRoleLLMForTests(), config)
    short, _ = await play(two_steps, REWARDS[:2], quit_last=True)
    assert short.reflections[0].entry.left_overlap is None  # no pair before the last


async def test_the_step_the_user_left_at_keeps_its_reward(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    swapped = lambda ep, n, salt="": np.arange(n)[::-1]  # noqa: E731
    with mock.patch.object(reward_shuffle, "permutation", swapped):
        policy = shuffle_policy(catalogue, tmp_path, value_source="session")
        writes, _ = await play(policy, REWARDS, quit_last=True)
    gamma = policy.config.gamma
    # Accepted steps 4.5 and 1.5 trade rewards; the quit step books quit_value as always.
    v_next = [1.5, 3.0]  # session means after 1.5, then 1.5 and 4.5
    expected = [(1 - gamma) * r + gamma * v for r, v in zip([1.5, 4.5], v_next, strict=True)]
    expected.append((1 - gamma) * policy.config.quit_value)
    assert [w.value for w in writes.critic] == pytest.approx(expected, abs=1e-6)
