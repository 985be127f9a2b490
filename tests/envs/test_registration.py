"""gymnasium.make("billp/MovieLens-Matrix-v0")."""

from __future__ import annotations

import logging
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import billp.envs  # noqa: F401  (registers the env)
from billp.config import DataConfig, EnvConfig
from billp.envs import MATRIX_ENV_ID, RecommendationEnv
from tests.envs.conftest import TOY_RATING_MODEL


def test_registered_with_a_step_cap() -> None:
    spec = gymnasium.spec(MATRIX_ENV_ID)
    assert spec.max_episode_steps == 50


@pytest.mark.slow
def test_movielens_100k_env_passes_check_env(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="billp.envs.rating_model"):
        env = gymnasium.make(MATRIX_ENV_ID, env_config={"cache_dir": str(tmp_path)})
    assert "train RMSE" in caplog.text
    inner = env.unwrapped
    assert isinstance(inner, RecommendationEnv)
    assert inner.action_space.n == 1682
    assert len(inner.users) == 943
    check_env(inner)
    obs, info = env.reset(seed=0)
    assert obs["history"].tolist() == info["history"]  # H = K = 10
    env.close()


def test_make_accepts_configs_and_users(
    toy_data_config: DataConfig, toy_env_config: EnvConfig, caplog: pytest.LogCaptureFixture
) -> None:
    env = gymnasium.make(
        MATRIX_ENV_ID,
        env_config=toy_env_config,
        data_config=toy_data_config,
        users=[1, 3],
        max_episode_steps=toy_env_config.max_steps,
    )
    assert "not applied by gymnasium.make" in caplog.text  # max_steps=6 differs from 50
    assert env.unwrapped.users == [1, 3]  # type: ignore[attr-defined]
    assert env.spec is not None and env.spec.max_episode_steps == 6
    assert toy_env_config.rating_model == TOY_RATING_MODEL


def test_make_rejects_the_le_world(toy_data_config: DataConfig) -> None:
    with pytest.raises(ValueError, match="matrix simulator"):
        gymnasium.make(MATRIX_ENV_ID, env_config={"name": "le"}, data_config=toy_data_config)
