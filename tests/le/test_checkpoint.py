"""Loading refuses corrupted and mismatched checkpoints, naming what is wrong."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from billp.config import DataConfig
from billp.data import load_dataset, write_toy_dataset
from billp.le.checkpoint import (
    CALIBRATION_NEIGHBOUR,
    FORMAT,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    load_checkpoint,
)
from billp.le.errors import CheckpointError, CheckpointMismatchError, LEError
from tests.le.tiny_le import TOY_ITEMS, TinyLE


def _copy(tiny_le: TinyLE, tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_le.checkpoint, folder)
    return folder


def _load(tiny_le: TinyLE, folder: Path, base: Path | None = None) -> None:
    load_checkpoint(folder, tiny_le.dataset.catalogue, str(base or tiny_le.base), "float32")


def test_corrupted_weights_are_refused(tiny_le: TinyLE, tmp_path: Path) -> None:
    folder = _copy(tiny_le, tmp_path)
    weights = folder / WEIGHTS_FILE
    payload = bytearray(weights.read_bytes())
    payload[-1] ^= 0xFF
    weights.write_bytes(bytes(payload))
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE} are corrupted: sha256"):
        _load(tiny_le, folder)


def test_missing_or_broken_manifest_is_refused(tiny_le: TinyLE, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        _load(tiny_le, tmp_path / "nowhere")
    folder = _copy(tiny_le, tmp_path)
    (folder / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"manifest .*manifest.json is invalid"):
        _load(tiny_le, folder)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(CheckpointError, match=f"no readable {MANIFEST_FILE}"):
        _load(tiny_le, folder)


def test_another_catalogue_is_a_mismatch(tiny_le: TinyLE, tmp_path: Path) -> None:
    other = write_toy_dataset(tmp_path / "toy", n_items=TOY_ITEMS + 1, seed=5)
    catalogue = load_dataset(DataConfig(path=other)).catalogue
    with pytest.raises(CheckpointMismatchError, match=r"does not match the catalogue.*25 items"):
        load_checkpoint(tiny_le.checkpoint, catalogue, str(tiny_le.base), "float32")


def test_another_base_model_is_a_mismatch(tiny_le: TinyLE, tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    shutil.copytree(tiny_le.base, other)
    weights = next(other.glob("*.safetensors"))
    tensors = load_file(str(weights))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, str(weights), metadata={"format": "pt"})
    with pytest.raises(
        CheckpointMismatchError, match=r"does not match the base model: the weights"
    ):
        _load(tiny_le, tiny_le.checkpoint, other)
    config_path = other / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["rms_norm_eps"] = 1e-3
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(CheckpointMismatchError, match=r"does not match the base model: the config"):
        _load(tiny_le, tiny_le.checkpoint, other)


def test_a_base_model_that_is_not_a_folder_is_named(tiny_le: TinyLE, tmp_path: Path) -> None:
    with pytest.raises(LEError, match=r"le.base_model .*no-such-model"):
        _load(tiny_le, tiny_le.checkpoint, tmp_path / "no-such-model")


def test_a_checkpoint_without_the_neighbour_weight_loads_without_the_term(
    tiny_le: TinyLE, tmp_path: Path
) -> None:
    """Checkpoints written before the neighbourhood term existed keep their old rewards."""
    folder = _copy(tiny_le, tmp_path)
    weights = folder / WEIGHTS_FILE
    tensors = load_file(weights)
    assert CALIBRATION_NEIGHBOUR in tensors
    del tensors[CALIBRATION_NEIGHBOUR]
    save_file(tensors, weights, metadata={"format": FORMAT})
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    loaded = load_checkpoint(folder, tiny_le.dataset.catalogue, str(tiny_le.base), "float32")
    assert loaded.calibration.neighbour_weight == 0.0
    assert not loaded.calibration.uses_neighbours
