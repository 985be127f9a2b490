"""Building the world and making envs from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from gymnasium.wrappers import TimeLimit

from billp.config import DataConfig, EnvConfig, LEConfig
from billp.data import UnknownUserError, load_dataset
from billp.envs import MatrixUserModel, RecommendationEnv, World, build_world, check_world
from billp.envs.quit_rule import QuitDecision
from billp.le.errors import CheckpointError, CheckpointMismatchError


def test_world_parts(toy_world: World, toy_env_config: EnvConfig) -> None:
    assert isinstance(toy_world.user_model, MatrixUserModel)
    assert toy_world.user_model.matrix.shape == (
        toy_world.dataset.n_users,
        len(toy_world.dataset.catalogue),
    )
    assert toy_world.quit_rule.window == toy_env_config.quit_window
    assert toy_world.starts([2]) == {2: toy_world.dataset.starting_history(2)}


def test_make_env_wraps_in_time_limit(toy_world: World) -> None:
    env = toy_world.make_env(toy_world.dataset.split.test_users)
    assert isinstance(env, TimeLimit)
    inner = env.unwrapped
    assert isinstance(inner, RecommendationEnv)
    assert inner.users == toy_world.dataset.split.test_users
    assert inner.observation_length == 8
    # A user who never quits: the episode runs to the cap (max_steps=6) and is truncated there.
    inner.quit_rule.decide = lambda item, reward, recent: QuitDecision(quit=False)  # type: ignore[method-assign]
    env.reset(seed=0)
    flags = []
    while not (flags and (flags[-1][0] or flags[-1][1])):
        _, _, terminated, truncated, _ = env.step(len(flags))
        flags.append((terminated, truncated))
    assert len(flags) == 6
    assert flags[-1] == (False, True)
    assert all(flag == (False, False) for flag in flags[:-1])


def test_make_env_rejects_bad_users(toy_world: World) -> None:
    with pytest.raises(ValueError, match="at least one user"):
        toy_world.make_env([])
    with pytest.raises(UnknownUserError, match="user id 99"):
        toy_world.make_env([99])


def test_le_world_needs_a_checkpoint_of_its_catalogue(
    toy_data_config: DataConfig, tmp_path: Path
) -> None:
    missing = EnvConfig(name="le", le=LEConfig(checkpoint=tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        build_world(missing, toy_data_config)
    with pytest.raises(CheckpointMismatchError, match="does not match the catalogue"):
        build_world(EnvConfig(name="le"), toy_data_config)  # the shipped ML-100K checkpoint


def test_le_world_check_fails_like_the_build_without_loading_the_base_model(
    toy_data_config: DataConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # check_world runs before the LLM server starts; the slow load runs beside the start.
    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_world loaded the base model")

    monkeypatch.setattr("billp.le.checkpoint.load_base", no_load)
    dataset = load_dataset(toy_data_config)
    missing = EnvConfig(name="le", le=LEConfig(checkpoint=tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        check_world(missing, dataset)
    with pytest.raises(CheckpointMismatchError, match="does not match the catalogue"):
        check_world(EnvConfig(name="le"), dataset)
    check_world(EnvConfig(name="matrix"), dataset)  # nothing to check before its fit
