"""A tiny LE trained end to end in seconds: tiny random Llama, toy dataset, short stages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from billp.config import DataConfig, LEConfig, LETrainConfig
from billp.data import Dataset, load_dataset, write_toy_dataset
from billp.le.train import TrainedLE, fit_le, save_trained
from tests.integration.tiny_model import build_tiny_model

TOY_USERS = 16
TOY_ITEMS = 24
TOY_PER_USER = 14
TOY_HISTORY = 4


def tiny_le_config(base: Path) -> LEConfig:
    """The tiny LE's runtime settings (float32)."""
    return LEConfig(
        base_model=str(base),
        dtype="float32",
        score_batch_size=5,
        threads=1,  # a tiny model gains nothing from threads; shared CPUs make them costly
    )


def tiny_train_config(**train: object) -> LETrainConfig:
    """Training settings that train the tiny model in seconds (float32 throughout)."""
    settings: dict[str, object] = {
        "dtype": "float32",
        "prompt": "The user watched:",
        "item_epochs": 4,
        "item_batch_size": 8,
        "item_lr": 2e-2,
        "steps": 40,
        "batch_size": 8,
        "lr": 3e-3,
        "item_embedding_lr": 1e-3,
        "context_items": 6,
        "scored_positions": 4,
        "sm_negatives": 12,
        "popularity_window": 4,
        "log_every": 4,
        "train_user_fraction": 1.0,
        "calibration_users": 16,
        "calibration_items_per_user": 4,
    }
    settings.update(train)
    return LETrainConfig.model_validate(settings)


@dataclass
class TinyLE:
    """Everything a test needs around a trained tiny LE."""

    base: Path
    data_config: DataConfig
    dataset: Dataset
    config: LEConfig
    train: LETrainConfig
    trained: TrainedLE
    checkpoint: Path
    train_seconds: float
    """Wall-clock time of building the tiny model and data, training and saving."""


def build_tiny_le(root: Path) -> TinyLE:
    """Build the tiny model and toy data under ``root``, train an LE and save it."""
    started = time.perf_counter()
    base = build_tiny_model(root / "tiny-model")
    folder = write_toy_dataset(
        root / "toy", n_users=TOY_USERS, n_items=TOY_ITEMS, per_user=TOY_PER_USER
    )
    data_config = DataConfig(path=folder, history_length=TOY_HISTORY)
    dataset = load_dataset(data_config)
    config = tiny_le_config(base)
    train = tiny_train_config()
    trained = fit_le(dataset, config, train)
    checkpoint = root / "checkpoint"
    save_trained(trained, dataset, config, train, checkpoint)
    elapsed = time.perf_counter() - started
    return TinyLE(base, data_config, dataset, config, train, trained, checkpoint, elapsed)
