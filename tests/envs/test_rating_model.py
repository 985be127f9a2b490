"""Matrix factorisation rating model and its safetensors cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from billp.config import RatingModelConfig
from billp.data import Dataset
from billp.envs import fit_rating_model, load_or_fit_rating_matrix
from billp.envs import rating_model as rating_model_module
from billp.envs.rating_model import cache_path, default_cache_dir
from tests.envs.conftest import TOY_RATING_MODEL


def test_fit_is_seeded_and_learns_the_ratings(toy_dataset: Dataset) -> None:
    first = fit_rating_model(toy_dataset, TOY_RATING_MODEL)
    again = fit_rating_model(toy_dataset, TOY_RATING_MODEL)
    np.testing.assert_array_equal(first.matrix(), again.matrix())
    ratings = toy_dataset.train_interactions.ratings
    baseline = float(np.sqrt(np.mean((ratings - ratings.mean()) ** 2)))
    assert first.train_rmse < 0.7 * baseline
    other = fit_rating_model(toy_dataset, TOY_RATING_MODEL.model_copy(update={"seed": 1}))
    assert not np.array_equal(other.matrix(), first.matrix())


def test_fit_restores_the_torch_thread_setting(toy_dataset: Dataset) -> None:
    before = torch.get_num_threads()
    fit_rating_model(toy_dataset, TOY_RATING_MODEL)
    assert torch.get_num_threads() == before


def test_matrix_shape_and_range(toy_dataset: Dataset, tmp_path: Path) -> None:
    matrix = load_or_fit_rating_matrix(toy_dataset, TOY_RATING_MODEL, tmp_path)
    assert matrix.shape == (toy_dataset.n_users, len(toy_dataset.catalogue))
    assert matrix.dtype == np.float32
    assert matrix.min() >= 1.0 and matrix.max() <= 5.0


def test_second_build_hits_the_cache(
    toy_dataset: Dataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="billp.envs.rating_model"):
        fitted = load_or_fit_rating_matrix(toy_dataset, TOY_RATING_MODEL, tmp_path)
    assert "train RMSE" in caplog.text
    path = cache_path(toy_dataset, TOY_RATING_MODEL, tmp_path)
    assert path.is_file() and path.parent == tmp_path / "rating_models"
    assert path.suffix == ".safetensors"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over

    def no_refit(*args: object) -> None:
        raise AssertionError("the cached model was refitted")

    monkeypatch.setattr(rating_model_module, "fit_rating_model", no_refit)
    cached = load_or_fit_rating_matrix(toy_dataset, TOY_RATING_MODEL, tmp_path)
    np.testing.assert_array_equal(cached, fitted)


def test_cache_key_depends_on_config(toy_dataset: Dataset, tmp_path: Path) -> None:
    base = cache_path(toy_dataset, TOY_RATING_MODEL, tmp_path)
    changed = cache_path(toy_dataset, RatingModelConfig(dim=5), tmp_path)
    assert base != changed
    assert len(base.stem) == 64


def test_corrupt_cache_is_refitted(
    toy_dataset: Dataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fitted = load_or_fit_rating_matrix(toy_dataset, TOY_RATING_MODEL, tmp_path)
    path = cache_path(toy_dataset, TOY_RATING_MODEL, tmp_path)
    path.write_bytes(b"not a safetensors file")
    again = load_or_fit_rating_matrix(toy_dataset, TOY_RATING_MODEL, tmp_path)
    assert "refitting" in caplog.text and str(path) in caplog.text
    np.testing.assert_array_equal(again, fitted)
    assert path.stat().st_size > len(b"not a safetensors file")


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "billp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "billp"


def test_cache_is_keyed_on_and_records_the_numeric_environment(
    toy_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model fitted under another SIMD level or torch version is never read."""
    import safetensors

    load_or_fit_rating_matrix(toy_dataset, TOY_RATING_MODEL, tmp_path)
    path = cache_path(toy_dataset, TOY_RATING_MODEL, tmp_path)
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata()
    assert metadata["numeric_torch"] == torch.__version__
    assert metadata["numeric_torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    monkeypatch.setattr(rating_model_module, "numeric_fingerprint", lambda: "another machine")
    assert cache_path(toy_dataset, TOY_RATING_MODEL, tmp_path) != path


def test_fit_is_float64_and_the_simulator_matrix_float32(toy_dataset: Dataset) -> None:
    factors = fit_rating_model(toy_dataset, TOY_RATING_MODEL)
    assert factors.user_factors.dtype == np.float64 == factors.item_factors.dtype
    assert factors.matrix().dtype == np.float32
