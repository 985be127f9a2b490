"""LEUserModel: the UserModel protocol on the 1..5 scale, the state, and input errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from billp.data.errors import UnknownItemError
from billp.envs import StateModel, UserModel
from billp.le.checkpoint import load_checkpoint
from billp.le.errors import LEError
from billp.le.user_model import LEUserModel, load_user_model
from billp.le.user_ratings import known_ratings
from tests.le.tiny_le import TOY_ITEMS, TinyLE

STATE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def le_model(tiny_le: TinyLE) -> LEUserModel:
    config = tiny_le.config.model_copy(update={"checkpoint": tiny_le.checkpoint})
    return load_user_model(config, tiny_le.dataset.catalogue)


def test_implements_the_protocols_on_the_rating_scale(le_model: LEUserModel) -> None:
    assert isinstance(le_model, UserModel) and isinstance(le_model, StateModel)
    history = [3, 8, 1]
    rewards = le_model.rewards(0, history, list(range(TOY_ITEMS)))
    assert rewards.dtype == np.float32 and rewards.shape == (TOY_ITEMS,)
    assert ((rewards >= 1.0) & (rewards <= 5.0)).all()
    assert le_model.reward(0, history, 5) == pytest.approx(float(rewards[5]), abs=1e-4)
    scored = le_model.score(0, history, [5, 6])
    np.testing.assert_allclose(scored.rewards, rewards[[5, 6]], atol=1e-4)
    np.testing.assert_allclose(le_model.raw_scores(history, [5, 6]), scored.psi, atol=1e-5)
    assert scored.states.shape == (2, le_model.state_dim)


def test_known_ratings_reach_the_reward_and_the_state(tiny_le: TinyLE) -> None:
    """The LE reads a user's logged ratings (train part only); other users' calls do not."""
    config = tiny_le.config.model_copy(update={"checkpoint": tiny_le.checkpoint})
    table = known_ratings(tiny_le.dataset)
    informed = load_user_model(config, tiny_le.dataset.catalogue, table)
    blind = load_user_model(config, tiny_le.dataset.catalogue)
    user = next(iter(table))
    history = list(table[user])[:4]
    candidates = [i for i in range(TOY_ITEMS) if i not in history][:5]
    assert not np.allclose(
        informed.rewards(user, history, candidates), blind.rewards(user, history, candidates)
    )
    assert not np.allclose(informed.state(user, history), blind.state(user, history))
    # A user with no logged ratings of these items gets the blind answer.
    stranger = max(table) + 1
    np.testing.assert_allclose(
        informed.rewards(stranger, history, candidates),
        blind.rewards(stranger, history, candidates),
        atol=1e-5,
    )
    # Held-out ratings are never readable.
    held = tiny_le.dataset.heldout_interactions
    assert len(held.users) > 0
    assert all(
        int(i) not in table.get(int(u), {}) for u, i in zip(held.users, held.items, strict=True)
    )


def test_state_is_unit_length_and_a_by_product_of_the_reward(
    le_model: LEUserModel, tiny_le: TinyLE
) -> None:
    history = [2, 4, 6, 8]
    le_model.reward(0, history, 10)  # caches the state after history + [10]
    cached = le_model.state(0, [*history, 10])
    fresh_model = LEUserModel(
        load_checkpoint(tiny_le.checkpoint, tiny_le.dataset.catalogue, str(tiny_le.base), "float32")
    )
    fresh = fresh_model.state(0, [*history, 10])
    assert cached.shape == (le_model.state_dim,)
    assert np.linalg.norm(cached) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(cached, fresh, atol=STATE_TOLERANCE)


def test_long_histories_keep_their_latest_items(le_model: LEUserModel) -> None:
    n = le_model.context_items
    long = list(range(n + 5))
    np.testing.assert_allclose(
        le_model.rewards(0, long, [1]), le_model.rewards(0, long[-(n - 1) :], [1])
    )
    np.testing.assert_allclose(le_model.state(0, long), le_model.state(0, long[-n:]))


def test_bad_inputs_get_clear_errors(le_model: LEUserModel) -> None:
    with pytest.raises(UnknownItemError, match=f"item id {TOY_ITEMS} is not in the catalogue"):
        le_model.reward(0, [1, 2], TOY_ITEMS)
    with pytest.raises(UnknownItemError, match=r"history: item id -1"):
        le_model.rewards(0, [1, -1], [2])
    with pytest.raises(LEError, match="non-empty history"):
        le_model.reward(0, [], 3)
    with pytest.raises(LEError, match="non-empty history"):
        le_model.state(0, [])
    with pytest.raises(UnknownItemError, match="integer item ids"):
        le_model.rewards(0, [1], [1.5])  # type: ignore[list-item]


def test_scores_from_many_threads_match_sequential_scores(le_model: LEUserModel) -> None:
    """The runner steps LE envs in worker threads: concurrent calls give the same numbers."""
    from concurrent.futures import ThreadPoolExecutor

    histories = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10], [2, 9, 4]]
    candidates = list(range(TOY_ITEMS))
    expected = [le_model.raw_scores(h, candidates) for h in histories]
    expected_states = [le_model.state(0, h) for h in histories]
    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = list(pool.map(lambda h: le_model.raw_scores(h, candidates), histories * 3))
        states = list(pool.map(lambda h: le_model.state(0, h), histories * 3))
    for got, want in zip(scores, expected * 3, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    for got, want in zip(states, expected_states * 3, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_neighbourhood_term_enters_rewards_and_logged_ratings(tiny_le: TinyLE) -> None:
    """The trained calibration weighs the term; rewards and logged ratings add it the same way."""
    config = tiny_le.config.model_copy(update={"checkpoint": tiny_le.checkpoint})
    table = known_ratings(tiny_le.dataset)
    informed = load_user_model(config, tiny_le.dataset.catalogue, table)
    assert informed.calibration.uses_neighbours and informed.neighbours is not None
    user = next(iter(table))
    history = list(table[user])[:3]  # within the context of both scoring paths
    candidates = [i for i in range(TOY_ITEMS) if i not in history]
    scored = informed.score(user, history, candidates)
    ratings = informed._ratings(user, history)
    term = informed._neighbour_terms(ratings, history, candidates)
    assert term is not None and np.abs(term).max() > 0.0
    line_only = dataclasses.replace(informed.calibration, neighbour_weight=0.0)
    plain = LEUserModel(
        dataclasses.replace(informed.loaded, calibration=line_only), known_ratings=table
    )
    without = plain.score(user, history, candidates).rewards
    inside = (without > 1.0) & (without < 5.0)
    assert inside.any()
    expected = np.clip(without + informed.calibration.neighbour_weight * term, 1.0, 5.0)
    np.testing.assert_allclose(scored.rewards[inside], expected[inside], atol=1e-4)
    # Logged scoring of the last candidate after the same history gives the same reward.
    sequence = [*history, candidates[-1]]
    known = np.array([*ratings, np.nan])
    logged = informed.logged_ratings([sequence], [known], [[len(history)]])
    assert logged[0] == pytest.approx(float(scored.rewards[-1]), abs=1e-3)
