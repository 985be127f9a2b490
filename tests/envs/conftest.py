"""Shared fixtures for env tests: a toy dataset and a world built on it (tmp cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from billp.config import DataConfig, EnvConfig, RatingModelConfig
from billp.data import Dataset, load_dataset, write_toy_dataset
from billp.envs import World, build_world

TOY_RATING_MODEL = RatingModelConfig(dim=4, epochs=60, weight_decay=1e-3)


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_dataset(tmp_path_factory.mktemp("toy") / "toy", n_users=12, n_items=30)


@pytest.fixture(scope="module")
def toy_data_config(toy_folder: Path) -> DataConfig:
    return DataConfig(path=toy_folder, history_length=5)


@pytest.fixture(scope="module")
def toy_dataset(toy_data_config: DataConfig) -> Dataset:
    return load_dataset(toy_data_config)


@pytest.fixture(scope="module")
def toy_env_config(tmp_path_factory: pytest.TempPathFactory) -> EnvConfig:
    return EnvConfig(
        name="matrix",
        cache_dir=tmp_path_factory.mktemp("cache"),
        rating_model=TOY_RATING_MODEL,
        observation_length=8,
        max_steps=6,
    )


@pytest.fixture(scope="module")
def toy_world(toy_env_config: EnvConfig, toy_data_config: DataConfig) -> World:
    return build_world(toy_env_config, toy_data_config)
