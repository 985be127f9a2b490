"""The recommendation env: spaces, quit semantics, TimeLimit, determinism, errors."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import TimeLimit

from billp.data import Catalogue, Item, UnknownItemError
from billp.envs import MatrixUserModel, QuitRule, RecommendationEnv, World

# item: 0 Action, 1 Action, 2 Comedy, 3 Drama, 4 Horror, 5 Romance
GENRES = [("Action",), ("Action",), ("Comedy",), ("Drama",), ("Horror",), ("Romance",)]
# user 0 loves everything but item 5; user 1 dislikes item 2
RATINGS = np.array([[4.0, 4.5, 5.0, 3.0, 4.0, 1.5], [3.0, 3.0, 1.0, 4.0, 4.0, 4.0]])


def small_env(
    observation_length: int = 3, starts: dict[int, list[int]] | None = None
) -> RecommendationEnv:
    catalogue = Catalogue(
        [
            Item(item_id=i, raw_id=str(i + 1), title=f"Film {i}", year=None, genres=g)
            for i, g in enumerate(GENRES)
        ]
    )
    rule = QuitRule(catalogue.genre_sets, window=4, reward_threshold=2.0, similarity_threshold=1.0)
    return RecommendationEnv(
        catalogue=catalogue,
        user_model=MatrixUserModel(RATINGS),
        starts=starts if starts is not None else {0: [3, 4], 1: [0, 1, 2, 3]},
        quit_rule=rule,
        observation_length=observation_length,
        render_mode="ansi",
    )


@pytest.mark.filterwarnings("ignore:.*alternative render modes")
def test_check_env_passes_on_toy_world(toy_world: World) -> None:
    env = toy_world.make_env()
    check_env(env.unwrapped)


def test_observation_is_left_padded() -> None:
    env = small_env(observation_length=3)
    obs, info = env.reset(options={"user_id": 0})
    assert info == {"user_id": 0, "history": [3, 4]}
    assert obs["history"].tolist() == [0, 3, 4]
    assert obs["mask"].tolist() == [0, 1, 1]
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(2)
    obs, *_ = env.step(0)
    assert obs["history"].tolist() == [4, 2, 0]
    assert obs["mask"].tolist() == [1, 1, 1]
    assert env.history == [3, 4, 2, 0]
    assert env.recommendations == [2, 0]


def test_quit_step_returns_its_reward_and_terminates() -> None:
    env = small_env()
    env.reset(options={"user_id": 0})
    _, reward, terminated, truncated, info = env.step(np.int64(0))
    assert (reward, terminated, truncated) == (4.0, False, False)
    assert info == {"item_id": 0, "quit_reason": None, "similar_to": None, "step": 1}
    _, reward, terminated, truncated, info = env.step(1)  # same genre set as item 0
    assert (reward, terminated, truncated) == (4.5, True, False)
    assert info == {"item_id": 1, "quit_reason": "too_similar", "similar_to": 0, "step": 2}
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(2)


def test_first_recommendation_can_quit_on_low_reward() -> None:
    env = small_env()
    env.reset(options={"user_id": 1})
    _, reward, terminated, _, info = env.step(2)
    assert reward == 1.0 and terminated
    assert info["quit_reason"] == "low_reward" and info["step"] == 1


def test_repeat_quits() -> None:
    env = small_env()
    env.reset(options={"user_id": 0})
    env.step(3)
    _, _, terminated, _, info = env.step(3)
    assert terminated and info["quit_reason"] == "repeat" and info["similar_to"] == 3


def test_starting_history_does_not_trigger_the_quit_rule() -> None:
    env = small_env()
    env.reset(options={"user_id": 1})  # history 0, 1, 2, 3
    _, _, terminated, _, _ = env.step(3)
    assert not terminated


def test_time_limit_truncates_without_terminating() -> None:
    env = TimeLimit(small_env(), max_episode_steps=3)
    env.reset(options={"user_id": 0})
    results = [env.step(item)[2:4] for item in (0, 2, 3)]
    assert results == [(False, False), (False, False), (False, True)]


def test_reset_is_deterministic_given_a_seed(toy_world: World) -> None:
    env = toy_world.make_env()
    users = [env.reset(seed=seed)[1]["user_id"] for seed in range(8)]
    again = [env.reset(seed=seed)[1]["user_id"] for seed in range(8)]
    assert users == again
    assert len(set(users)) > 1
    obs_a, info_a = env.reset(seed=3)
    obs_b, info_b = env.reset(seed=3)
    np.testing.assert_array_equal(obs_a["history"], obs_b["history"])
    assert info_a == info_b


def test_rewards_stay_in_range(toy_world: World) -> None:
    env = toy_world.make_env()
    env.action_space.seed(0)
    rewards: list[float] = []
    for seed in range(20):
        env.reset(seed=seed)
        for _ in range(10):
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            rewards.append(reward)
            assert isinstance(reward, float)
            if terminated or truncated:
                break
    assert all(1.0 <= r <= 5.0 for r in rewards)


def test_unknown_action_is_a_clear_error() -> None:
    env = small_env()
    env.reset(options={"user_id": 0})
    with pytest.raises(UnknownItemError, match=r"invalid action 6: .*not in the catalogue of 6"):
        env.step(6)
    with pytest.raises(ValueError, match="invalid action -1"):
        env.step(-1)
    with pytest.raises(ValueError, match="not an integer"):
        env.step(1.5)  # type: ignore[arg-type]


def test_reset_options_and_order_errors() -> None:
    env = small_env()
    with pytest.raises(RuntimeError, match=r"reset\(\) before step"):
        env.step(0)
    with pytest.raises(ValueError, match="user_id 7 is not one of this env's 2 users"):
        env.reset(options={"user_id": 7})
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['user'\]"):
        env.reset(options={"user": 0})


def test_constructor_validates_arguments() -> None:
    with pytest.raises(ValueError, match=r"starts\[0\]: item id 9"):
        small_env(starts={0: [9]})
    with pytest.raises(ValueError, match="non-empty mapping"):
        small_env(starts={})
    with pytest.raises(ValueError, match="observation_length must be >= 1"):
        small_env(observation_length=0)
    env = small_env()
    with pytest.raises(TypeError, match="catalogue must be a Catalogue"):
        RecommendationEnv([], env.user_model, {0: []}, env.quit_rule, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="user_model must implement"):
        RecommendationEnv(env.catalogue, object(), {0: []}, env.quit_rule, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="render_mode"):
        RecommendationEnv(env.catalogue, env.user_model, {0: []}, env.quit_rule, 3, "human")


def test_empty_starting_history_and_render() -> None:
    env = small_env(starts={0: []})
    obs, _ = env.reset()
    assert obs["mask"].tolist() == [0, 0, 0]
    env.step(2)
    text = env.render()
    assert text is not None and "user 0, step 1" in text and "Film 2" in text
    assert isinstance(env, gymnasium.Env)
