"""End to end: a tiny LE trains, its losses fall, and its checkpoint round-trips exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from billp.config import LETrainCommandConfig
from billp.data import load_dataset
from billp.le.checkpoint import (
    CONFIG_FILE,
    LOSS_CURVE_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    checkpoint_tensors,
    load_checkpoint,
    read_manifest,
)
from billp.le.cli import load_command_config
from billp.le.recorded_config import recorded_train_config
from billp.le.train import fit_le
from billp.le.train_data import training_users
from tests.le.tiny_le import TinyLE, tiny_train_config

CI_TRAIN_LIMIT_S = 60.0
LOG_POINTS_COMPARED = 2


def _losses(path: Path, stage: str, column: str) -> list[float]:
    with path.open(encoding="utf-8") as handle:
        return [float(r[column]) for r in csv.DictReader(handle) if r["stage"] == stage]


def test_tiny_le_trains_in_under_a_minute_and_its_losses_fall(tiny_le: TinyLE) -> None:
    assert tiny_le.train_seconds < CI_TRAIN_LIMIT_S
    curve = tiny_le.checkpoint / LOSS_CURVE_FILE
    text = _losses(curve, "item", "l_text")
    lora = _losses(curve, "lora", "loss")
    n = LOG_POINTS_COMPARED
    assert np.mean(text[-n:]) < np.mean(text[:n])
    assert np.mean(lora[-n:]) < np.mean(lora[:n])
    summary = tiny_le.trained.manifest.training
    assert summary is not None
    assert summary.lora_steps == tiny_le.train.steps
    assert not summary.budget_exhausted
    assert summary.peak_rss_mib > 0 and summary.cpu_seconds > 0


def test_rating_side_starts_at_the_bias_predictor_and_learns(tiny_le: TinyLE) -> None:
    """The rating head starts from the logs' mean and item biases; its squared error falls."""
    model, dataset = tiny_le.trained.model, tiny_le.dataset
    train = dataset.train_interactions
    taught = np.isin(train.users, training_users(dataset, tiny_le.train))
    expected = float(np.mean(train.ratings[taught]))
    assert float(model.rating_mean) == pytest.approx(expected, abs=1e-4)
    assert float(model.item_bias.abs().max()) > 0.0
    mse = _losses(tiny_le.checkpoint / LOSS_CURVE_FILE, "lora", "l_mse")
    assert len(mse) >= 2 and all(np.isfinite(mse))
    assert tiny_le.trained.calibration.extrapolate


def test_checkpoint_round_trips_exactly(tiny_le: TinyLE) -> None:
    loaded = load_checkpoint(
        tiny_le.checkpoint, tiny_le.dataset.catalogue, str(tiny_le.base), "float32"
    )
    trained = tiny_le.trained
    saved = checkpoint_tensors(trained.model, trained.calibration, torch.float32)
    again = checkpoint_tensors(loaded.model, loaded.calibration, torch.float32)
    assert saved.keys() == again.keys()
    for name, tensor in saved.items():
        assert torch.equal(tensor, again[name]), name
    # Same weights, same attention kernel: bit-identical scores.
    trained.model.base.set_attn_implementation(loaded.model.base.config._attn_implementation)
    prefix = [*loaded.manifest.prompt_ids, *(loaded.model.vocab_size + i for i in (2, 9, 4))]
    candidates = [loaded.model.vocab_size + i for i in range(10)]
    before = trained.model.score_shared_prefix(prefix, candidates, chunk=4)[0]
    after = loaded.model.score_shared_prefix(prefix, candidates, chunk=4)[0]
    assert torch.equal(before, after)


def test_checkpoint_folder_holds_manifest_config_and_curve(tiny_le: TinyLE) -> None:
    for name in (MANIFEST_FILE, WEIGHTS_FILE, CONFIG_FILE, LOSS_CURVE_FILE):
        assert (tiny_le.checkpoint / name).is_file(), name
    manifest = read_manifest(tiny_le.checkpoint)
    assert manifest.catalogue_fingerprint == tiny_le.dataset.catalogue.fingerprint
    assert manifest.config["le"]["train"] == tiny_le.train.model_dump(mode="json")
    assert recorded_train_config(manifest) == tiny_le.train
    reproduced = load_command_config(LETrainCommandConfig, tiny_le.checkpoint / CONFIG_FILE, {})
    assert reproduced.train == tiny_le.train
    assert reproduced.env.le == tiny_le.config
    assert reproduced.data == tiny_le.data_config


def test_training_is_reproducible_from_its_seed(tiny_le: TinyLE) -> None:
    train = tiny_train_config(item_epochs=1, steps=3)
    first = fit_le(tiny_le.dataset, tiny_le.config, train)
    second = fit_le(tiny_le.dataset, tiny_le.config, train)
    a = checkpoint_tensors(first.model, first.calibration, torch.float32)
    b = checkpoint_tensors(second.model, second.calibration, torch.float32)
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name


def test_shipped_checkpoint_config_reproduces_its_training_settings() -> None:
    """`python -m billp.le train --config <shipped>/config.toml` must parse with today's config
    tree and describe the training the manifest records."""
    from billp.le.checkpoint import default_checkpoint_dir

    folder = default_checkpoint_dir()
    config = load_command_config(LETrainCommandConfig, folder / CONFIG_FILE, {})
    manifest = read_manifest(folder)
    assert config.train == recorded_train_config(manifest)
    # It learned from every user's train part, as the matrix model does, and its count says so.
    assert config.train.learn_test_users
    assert manifest.training is not None
    dataset = load_dataset(config.data)
    assert len(training_users(dataset, config.train)) == manifest.training.train_users
    assert config.env.le.base_model == manifest.base_model
