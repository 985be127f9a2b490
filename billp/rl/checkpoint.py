"""Trained policies on disk: ``<root>/<policy>/model.safetensors`` + ``manifest.json``.

Weights are safetensors only (``safetensors.torch.save_model`` handles the sub-networks that
Tianshou's actors and critics share). The manifest records what the weights need to be rebuilt
and checked: the dataset and catalogue they were trained on, the config, and whether the
policy reads the LE state.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from safetensors.torch import load_model, save_model
from torch import nn

CHECKPOINT_ENV_VAR = "BILLP_RL_CHECKPOINTS"
DEFAULT_ROOT = Path("runs/rl")
MODEL_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"


class RLCheckpointError(RuntimeError):
    """A trained policy is missing, corrupted, or belongs to another catalogue."""


class RLManifest(BaseModel):
    """Everything needed to rebuild and check a trained policy."""

    policy: str = Field(description="Agent name (the checkpoint folder's name).")
    family: Literal["sqn", "tianshou"]
    algo: str = Field(description="SQN variant or Tianshou algorithm.")
    trained_on: str = Field(description="'logs' or the simulator the data or rewards came from.")
    n_items: int
    catalogue_fingerprint: str
    dataset_fingerprint: str
    le_state_dim: int = Field(0, description="LE state size the policy reads (0: none).")
    le_source: Literal["le", "fake"] | None = None
    le_identity: str | None = None
    observation_length: int = Field(10, description="K of the env observation (Tianshou nets).")
    config: dict[str, Any]
    train_seconds: float
    steps: int
    transitions: int = 0
    train_users: int | None = Field(None, description="Users whose logged transitions it saw.")
    le_train_users: int | None = Field(
        None, description="Users the LE it reads was trained on (None: it reads no LE)."
    )
    created: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    stats: dict[str, float] = Field(default_factory=dict)


def checkpoint_root() -> Path:
    """``$BILLP_RL_CHECKPOINTS`` or ``runs/rl`` (relative to the working directory)."""
    configured = os.environ.get(CHECKPOINT_ENV_VAR)
    return Path(configured) if configured else DEFAULT_ROOT


def save_policy(folder: Path, module: nn.Module, manifest: RLManifest) -> Path:
    """Write the weights and the manifest (each through a temp file and a rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MODEL_FILE}.tmp"
    save_model(module, str(tmp))
    tmp.replace(folder / MODEL_FILE)
    text = manifest.model_dump_json(indent=2) + "\n"
    tmp_manifest = folder / f".{MANIFEST_FILE}.tmp"
    tmp_manifest.write_text(text, encoding="utf-8")
    tmp_manifest.replace(folder / MANIFEST_FILE)
    return folder


def read_manifest(folder: Path) -> RLManifest:
    """The manifest of a trained policy.

    Raises:
        RLCheckpointError: the folder, its manifest or its weights are missing or invalid.
    """
    path = folder / MANIFEST_FILE
    if not path.is_file() or not (folder / MODEL_FILE).is_file():
        raise RLCheckpointError(
            f"no trained policy in {folder} (expected {MANIFEST_FILE} and {MODEL_FILE}); train "
            f"it with python -m billp.rl train, or point ${CHECKPOINT_ENV_VAR} at its parent"
        )
    try:
        return RLManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise RLCheckpointError(f"{path} is not a valid RL manifest: {exc}") from None


def check_catalogue(manifest: RLManifest, n_items: int, fingerprint: str, folder: Path) -> None:
    """Raise :class:`RLCheckpointError` unless the policy was trained on this catalogue."""
    if manifest.n_items != n_items or manifest.catalogue_fingerprint != fingerprint:
        raise RLCheckpointError(
            f"{folder} was trained on a catalogue of {manifest.n_items} items (fingerprint "
            f"{manifest.catalogue_fingerprint[:12]}), this one has {n_items} items (fingerprint "
            f"{fingerprint[:12]})"
        )


def load_weights(folder: Path, module: nn.Module) -> None:
    """Load ``model.safetensors`` into ``module`` (strict: every tensor must match).

    Raises:
        RLCheckpointError: the file is corrupted or its tensors do not fit ``module``.
    """
    path = folder / MODEL_FILE
    try:
        missing, unexpected = load_model(module, str(path), strict=False)
    except Exception as exc:  # safetensors and torch raise several types for bad files
        raise RLCheckpointError(f"cannot load {path}: {exc}") from exc
    if missing or unexpected:
        raise RLCheckpointError(
            f"{path} does not fit the network its manifest describes "
            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
