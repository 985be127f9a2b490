"""LE checkpoints: safetensors weights + a JSON manifest, verified before anything is used.

A checkpoint folder holds:

* ``le.safetensors``: item-token embeddings, LoRA adapters (``lora.*``), the state, score and
  rating heads, the rating embeddings and item biases, and the calibration. Never a pickle.
* ``manifest.json``: format, the base model's fingerprint (config sha256 + weights sha256),
  the catalogue fingerprint, the sha256 of ``le.safetensors``, the prompt token ids, the exact
  training config and a training summary.
* ``config.toml``: the config that reproduces it (``python -m billp.le train --config``).
* ``loss_curve.csv`` and the fidelity report (``fidelity.md``, ``fidelity.json``).

Loading checks, in order: the manifest, the weights file's sha256 (corruption), the catalogue,
the base model's config and weights; each failure names what differs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from billp.common.atomic_io import write_bytes_atomic
from billp.data.catalogue import Catalogue
from billp.le.base import BaseFingerprint, check_base, load_base, resolve_base_folder
from billp.le.calibration import Calibration
from billp.le.errors import CheckpointError, CheckpointMismatchError, LEError
from billp.le.model import LEModel
from billp.le.ratings import RATING_SLOTS

logger = logging.getLogger(__name__)

FORMAT = "billp-le-2"
"""Version 2 added the rating side (rating embeddings, item biases, the rating head) and the
linear, extrapolating calibration of the predicted rating."""
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "le.safetensors"
CONFIG_FILE = "config.toml"
LOSS_CURVE_FILE = "loss_curve.csv"
REPORT_MD = "fidelity.md"
REPORT_JSON = "fidelity.json"
LORA_PREFIX = "lora."
CALIBRATION_X, CALIBRATION_Y = "calibration.x", "calibration.y"
CALIBRATION_EXTRAPOLATE = "calibration.extrapolate"
CALIBRATION_NEIGHBOUR = "calibration.neighbour_weight"
"""Optional: checkpoints written before the neighbourhood term lack it (weight 0)."""
ITEM_TENSOR = "item_embeddings"
INFERENCE_ATTENTION = "sdpa"
DEFAULT_CHECKPOINT_NAME = "ml-100k-smollm2-135m"


def default_checkpoint_dir() -> Path:
    """The MovieLens-100K / SmolLM2-135M checkpoint shipped inside the package."""
    return Path(__file__).resolve().parent / "checkpoints" / DEFAULT_CHECKPOINT_NAME


class TrainingSummary(BaseModel):
    """What training cost and how far it got."""

    seconds: dict[str, float]
    """Wall-clock seconds per stage and in total."""
    cpu_seconds: float
    """CPU time of the training process (user + system, all threads)."""
    peak_rss_mib: float
    item_steps: int
    lora_steps: int
    budget_exhausted: bool
    final_losses: dict[str, float]
    calibration_points: int
    train_users: int
    threads: int
    versions: dict[str, str]


class LEManifest(BaseModel):
    """Everything needed to check and rebuild an LE around its base model."""

    format: str = FORMAT
    base_model: str
    base: BaseFingerprint
    catalogue_fingerprint: str
    n_items: int
    dataset_name: str
    dataset_fingerprint: str
    vocab_size: int
    hidden_size: int
    prompt_ids: list[int]
    context_items: int
    lora_rank: int
    lora_alpha: int
    lora_targets: list[str]
    item_dtype: str
    weights_sha256: str
    config: dict[str, Any]
    training: TrainingSummary | None = None


@dataclass
class LoadedLE:
    """A verified, ready-to-score LE."""

    model: LEModel
    calibration: Calibration
    manifest: LEManifest
    folder: Path


def sha256_bytes(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def checkpoint_tensors(
    model: LEModel, calibration: Calibration, item_dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores (contiguous, detached)."""
    tensors: dict[str, torch.Tensor] = {
        ITEM_TENSOR: model.item_embeddings.detach().to(item_dtype).contiguous(),
        CALIBRATION_X: torch.as_tensor(calibration.x, dtype=torch.float64),
        CALIBRATION_Y: torch.as_tensor(calibration.y, dtype=torch.float64),
        CALIBRATION_EXTRAPOLATE: torch.as_tensor(int(calibration.extrapolate), dtype=torch.uint8),
        CALIBRATION_NEIGHBOUR: torch.as_tensor(calibration.neighbour_weight, dtype=torch.float64),
    }
    heads = {name: _attribute(model, name) for name in _dense_shapes(model.hidden_size, 0)}
    tensors.update({name: t.detach().float().contiguous() for name, t in heads.items()})
    tensors.update({LORA_PREFIX + n: t for n, t in model.lora_state_dict().items()})
    return tensors


def _dense_shapes(hidden: int, n_items: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the heads and rating parameters stored in float32."""
    return {
        "state_head.weight": (hidden, hidden),
        "state_head.bias": (hidden,),
        "score_head.weight": (1, hidden),
        "score_head.bias": (1,),
        "rating_head.weight": (1, hidden),
        "rating_head.bias": (1,),
        "rating_embeddings.weight": (RATING_SLOTS, hidden),
        "item_bias": (n_items,),
        "history_weight": (),
        "rating_mean": (),
    }


def _attribute(model: LEModel, name: str) -> torch.Tensor:
    target: Any = model
    for part in name.split("."):
        target = getattr(target, part)
    assert isinstance(target, torch.Tensor)
    return target


def save_checkpoint(
    folder: Path, model: LEModel, calibration: Calibration, manifest: LEManifest
) -> LEManifest:
    """Write ``le.safetensors`` and ``manifest.json`` (with the weights' sha256) atomically."""
    from safetensors.torch import save

    item_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[manifest.item_dtype]
    payload = save(checkpoint_tensors(model, calibration, item_dtype), metadata={"format": FORMAT})
    manifest = manifest.model_copy(update={"weights_sha256": sha256_bytes(payload)})
    write_bytes_atomic(folder / WEIGHTS_FILE, payload)
    write_bytes_atomic(folder / MANIFEST_FILE, manifest.model_dump_json(indent=2).encode("utf-8"))
    return manifest


def read_manifest(folder: Path) -> LEManifest:
    """The manifest of a checkpoint folder.

    Raises:
        CheckpointError: the folder or manifest is missing or invalid.
    """
    if not folder.is_dir():
        raise CheckpointError(f"LE checkpoint folder not found: {folder}")
    path = folder / MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(
            f"LE checkpoint {folder} has no readable {MANIFEST_FILE}: {exc}"
        ) from exc
    try:
        manifest = LEManifest.model_validate_json(text)
    except ValidationError as exc:
        raise CheckpointError(f"LE checkpoint manifest {path} is invalid: {exc}") from exc
    if manifest.format != FORMAT:
        raise CheckpointError(f"{path} has format {manifest.format!r}, expected {FORMAT!r}")
    return manifest


def read_tensors(folder: Path, manifest: LEManifest) -> dict[str, torch.Tensor]:
    """Load ``le.safetensors`` after checking its sha256 against the manifest.

    Raises:
        CheckpointError: the file is missing, altered or not safetensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = folder / WEIGHTS_FILE
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"LE checkpoint weights {path} cannot be read: {exc}") from exc
    digest = sha256_bytes(payload)
    if digest != manifest.weights_sha256:
        raise CheckpointError(
            f"LE checkpoint weights {path} are corrupted: sha256 {digest[:12]} differs from "
            f"{manifest.weights_sha256[:12]} recorded in {MANIFEST_FILE}"
        )
    try:
        return load(payload)
    except SafetensorError as exc:  # pragma: no cover - the sha256 check comes first
        raise CheckpointError(
            f"LE checkpoint weights {path} are not valid safetensors: {exc}"
        ) from exc


def check_catalogue(manifest: LEManifest, catalogue: Catalogue, folder: Path) -> None:
    """Raise unless ``catalogue`` is the one the checkpoint was trained on."""
    if manifest.catalogue_fingerprint != catalogue.fingerprint or manifest.n_items != len(
        catalogue
    ):
        raise CheckpointMismatchError(
            f"LE checkpoint {folder} does not match the catalogue: it was trained on a catalogue "
            f"of {manifest.n_items} items (fingerprint {manifest.catalogue_fingerprint[:12]}), "
            f"the dataset's catalogue has {len(catalogue)} items (fingerprint "
            f"{catalogue.fingerprint[:12]})"
        )


def _take(
    tensors: dict[str, torch.Tensor], name: str, shape: tuple[int, ...], folder: Path
) -> torch.Tensor:
    if name not in tensors:
        raise CheckpointError(f"LE checkpoint {folder / WEIGHTS_FILE} lacks tensor {name!r}")
    tensor = tensors[name]
    if tuple(tensor.shape) != shape:
        raise CheckpointError(
            f"LE checkpoint {folder / WEIGHTS_FILE}: tensor {name!r} has shape "
            f"{tuple(tensor.shape)}, expected {shape}"
        )
    return tensor


def build_model(
    manifest: LEManifest, tensors: dict[str, torch.Tensor], base: Any, folder: Path
) -> tuple[LEModel, Calibration]:
    """An :class:`LEModel` around ``base`` with the checkpoint's weights."""
    model = LEModel(base, manifest.n_items)
    hidden = model.hidden_size
    if model.vocab_size != manifest.vocab_size or hidden != manifest.hidden_size:
        raise CheckpointMismatchError(
            f"LE checkpoint {folder} expects vocabulary {manifest.vocab_size} and hidden size "
            f"{manifest.hidden_size}, the base model has {model.vocab_size} and {hidden}"
        )
    model.add_lora(manifest.lora_rank, manifest.lora_alpha, manifest.lora_targets)
    with torch.no_grad():
        items = _take(tensors, ITEM_TENSOR, (manifest.n_items, hidden), folder)
        model.item_embeddings.copy_(items.float())
        for name, shape in _dense_shapes(hidden, manifest.n_items).items():
            _attribute(model, name).copy_(_take(tensors, name, shape, folder))
    lora = {n[len(LORA_PREFIX) :]: t for n, t in tensors.items() if n.startswith(LORA_PREFIX)}
    try:
        model.load_lora_state_dict(lora)
    except LEError as exc:
        raise CheckpointError(f"LE checkpoint {folder / WEIGHTS_FILE}: {exc}") from exc
    for name in (CALIBRATION_X, CALIBRATION_Y):
        if name not in tensors:
            raise CheckpointError(f"LE checkpoint {folder / WEIGHTS_FILE} lacks tensor {name!r}")
    try:
        calibration = Calibration(
            x=tensors[CALIBRATION_X].numpy().astype(np.float64),
            y=tensors[CALIBRATION_Y].numpy().astype(np.float64),
            extrapolate=bool(_take(tensors, CALIBRATION_EXTRAPOLATE, (), folder).item()),
            neighbour_weight=(
                float(_take(tensors, CALIBRATION_NEIGHBOUR, (), folder).item())
                if CALIBRATION_NEIGHBOUR in tensors
                else 0.0
            ),
        )
    except LEError as exc:
        raise CheckpointError(f"LE checkpoint {folder / WEIGHTS_FILE}: {exc}") from exc
    model.eval()
    model.requires_grad_(False)
    return model, calibration


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """An LE checkpoint's files, checked against a catalogue and a base model folder."""

    manifest: LEManifest
    tensors: dict[str, torch.Tensor]
    base_folder: Path


def verify_checkpoint(
    folder: Path, catalogue: Catalogue, base_model: str | None = None
) -> VerifiedCheckpoint:
    """Check an LE checkpoint for ``catalogue`` without loading the base model (a second or
    two: hashes and the small LE tensors), so that a bad checkpoint fails before anything slow
    starts.

    Raises:
        CheckpointError: the folder, manifest or weights are missing or corrupted.
        CheckpointMismatchError: the catalogue or the base model differ from the checkpoint's.
        LEError: the base model names nothing loadable.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    tensors = read_tensors(folder, manifest)
    check_catalogue(manifest, catalogue, folder)
    base_folder = resolve_base_folder(base_model or manifest.base_model)
    check_base(manifest.base, base_folder, folder)
    return VerifiedCheckpoint(manifest=manifest, tensors=tensors, base_folder=base_folder)


def load_checkpoint(
    folder: Path,
    catalogue: Catalogue,
    base_model: str | None = None,
    dtype: str = "bfloat16",
) -> LoadedLE:
    """Verify and load an LE checkpoint for ``catalogue``.

    Args:
        folder: the checkpoint folder.
        catalogue: the catalogue the LE will score (must be the one it was trained on).
        base_model: base model spec (default: the one recorded in the manifest).
        dtype: dtype of the base model while scoring.

    Raises:
        CheckpointError: the folder, manifest or weights are missing or corrupted.
        CheckpointMismatchError: the catalogue or the base model differ from the checkpoint's.
    """
    folder = Path(folder)
    verified = verify_checkpoint(folder, catalogue, base_model)
    base = load_base(verified.base_folder, dtype, INFERENCE_ATTENTION)
    model, calibration = build_model(verified.manifest, verified.tensors, base, folder)
    logger.info("LE checkpoint %s loaded on %s (%s)", folder, verified.base_folder, dtype)
    return LoadedLE(model=model, calibration=calibration, manifest=verified.manifest, folder=folder)
