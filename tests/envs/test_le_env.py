"""The LE world: same protocol as the matrix one, plus the state vector in the observation."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import billp.envs  # noqa: F401  (registers the envs)
from billp.config import EnvConfig
from billp.envs import LE_ENV_ID, MATRIX_ENV_ID, RecommendationEnv, World, build_world
from billp.le.user_model import LEUserModel
from tests.le.tiny_le import TinyLE, build_tiny_le


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyLE:
    return build_tiny_le(tmp_path_factory.mktemp("le-env"))


@pytest.fixture(scope="module")
def le_env_config(tiny: TinyLE) -> EnvConfig:
    le = tiny.config.model_copy(update={"checkpoint": tiny.checkpoint})
    return EnvConfig(name="le", le=le, observation_length=5, max_steps=6)


@pytest.fixture(scope="module")
def le_world(tiny: TinyLE, le_env_config: EnvConfig) -> World:
    return build_world(le_env_config, tiny.data_config)


def test_le_world_observes_the_state(le_world: World) -> None:
    assert isinstance(le_world.user_model, LEUserModel)
    env = le_world.make_env()
    inner = env.unwrapped
    assert isinstance(inner, RecommendationEnv)
    space = inner.observation_space
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == {"history", "mask", "state"}
    state_space = space.spaces["state"]
    assert isinstance(state_space, spaces.Box) and state_space.dtype == np.float32
    assert state_space.shape == (le_world.user_model.state_dim,)  # type: ignore[attr-defined]
    check_env(inner, skip_render_check=True)
    obs, info = env.reset(seed=0)
    expected = le_world.user_model.state(info["user_id"], info["history"])  # type: ignore[attr-defined]
    np.testing.assert_allclose(obs["state"], expected, atol=1e-6)
    obs, reward, _, truncated, _ = env.step(int(obs["history"][0]) + 1)
    assert 1.0 <= reward <= 5.0 and truncated is False
    assert space.contains(obs)


def test_le_env_is_registered_and_passes_check_env(tiny: TinyLE, le_env_config: EnvConfig) -> None:
    env = gymnasium.make(
        LE_ENV_ID, env_config=le_env_config, data_config=tiny.data_config, max_episode_steps=6
    )
    check_env(env.unwrapped, skip_render_check=True)
    assert "state" in env.observation_space.spaces  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="is the le simulator"):
        gymnasium.make(LE_ENV_ID, env_config={"name": "matrix"}, data_config=tiny.data_config)


def test_matrix_observation_is_unchanged(tiny: TinyLE, tmp_path: Path) -> None:
    env = gymnasium.make(
        MATRIX_ENV_ID,
        env_config={"cache_dir": str(tmp_path), "rating_model": {"dim": 2, "epochs": 5}},
        data_config=tiny.data_config,
    )
    assert set(env.observation_space.spaces) == {"history", "mask"}  # type: ignore[attr-defined]


def test_tianshou_vector_env_carries_the_state(le_world: World) -> None:
    tianshou_env = pytest.importorskip("tianshou.env")
    from tianshou.data import Batch

    venv = tianshou_env.DummyVectorEnv([le_world.make_env, le_world.make_env])
    obs, _ = venv.reset(seed=0)
    stacked = Batch.stack([Batch(o) for o in obs])  # what tianshou's Collector does
    dim = le_world.user_model.state_dim  # type: ignore[attr-defined]
    assert stacked.state.shape == (2, dim) and stacked.history.shape == (2, 5)
    obs, rewards, _, _, _ = venv.step(np.array([1, 2]))
    assert Batch.stack([Batch(o) for o in obs]).state.dtype == np.float32
    assert rewards.shape == (2,)
    venv.close()


@pytest.mark.slow
def test_shipped_checkpoint_env_passes_check_env() -> None:
    env = gymnasium.make(LE_ENV_ID)
    inner = env.unwrapped
    assert isinstance(inner, RecommendationEnv)
    assert inner.action_space.n == 1682  # type: ignore[attr-defined]
    check_env(inner, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["state"].shape == (576,)
