"""Shared fixtures for RL tests: a toy dataset (16 users, 30 items) and a fast CLI config."""

from __future__ import annotations

from pathlib import Path

import pytest

from billp.config import DataConfig
from billp.data import Dataset, load_dataset, write_toy_dataset

TOY_HISTORY = 4


@pytest.fixture(scope="session")
def toy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_dataset(
        tmp_path_factory.mktemp("rl-toy") / "toy", n_users=16, n_items=30, per_user=14
    )


@pytest.fixture(scope="session")
def toy_data_config(toy_folder: Path) -> DataConfig:
    return DataConfig(path=toy_folder, history_length=TOY_HISTORY)


@pytest.fixture(scope="session")
def toy_dataset(toy_data_config: DataConfig) -> Dataset:
    return load_dataset(toy_data_config)


def tiny_flags(toy_folder: Path, root: Path) -> list[str]:
    """CLI flags of a run that trains every model in about a second on the toy data."""
    return [
        "--data.path", str(toy_folder),
        "--data.history-length", str(TOY_HISTORY),
        "--features.source", "fake",
        "--features.fake-dim", "8",
        "--output-dir", str(root / "rl"),
        "--env.cache-dir", str(root / "cache"),
        "--env.rating-model.dim", "4",
        "--env.rating-model.epochs", "30",
        "--env.max-steps", "5",
        "--progress", "false",
        "--log-level", "WARNING",
        "--sqn.epochs", "2",
        "--sqn.batch-size", "32",
        "--sqn.embedding-dim", "8",
        "--sqn.hidden-dim", "8",
        "--tianshou.offline-steps", "8",
        "--tianshou.online-env-steps", "32",
        "--tianshou.online-env-steps-le", "32",
        "--tianshou.epochs", "2",
        "--tianshou.collect-steps", "16",
        "--tianshou.training-envs", "2",
        "--tianshou.batch-size", "16",
        "--tianshou.embedding-dim", "8",
        "--tianshou.hidden-dim", "16",
        "--tianshou.buffer-size", "256",
    ]  # fmt: skip
