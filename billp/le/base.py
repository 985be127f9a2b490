"""The frozen base language model: locating it, fingerprinting it, loading it.

The fingerprint that ties a checkpoint to its base model is the sha256 of the model's
``config.json`` (minus bookkeeping keys such as ``transformers_version``) and a sha256 over the
weight tensors' names, dtypes, shapes and bytes (so re-saving the same weights with another
safetensors writer still matches). File names and sizes are recorded for the error message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from billp.common.provision import ProvisionError, resolve_model
from billp.le.errors import CheckpointError, CheckpointMismatchError, LEError

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHT_SUFFIX = ".safetensors"
VOLATILE_CONFIG_KEYS = frozenset({"transformers_version"})
"""Config keys that change with the library that wrote the folder, not with the model."""
DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float32": torch.float32}

_FINGERPRINTS: dict[tuple[str, tuple[object, ...]], BaseFingerprint] = {}
"""In-process cache keyed by folder and its config and weight files' (name, size, mtime)."""


class BaseFingerprint(BaseModel):
    """What identifies a base model folder."""

    config_sha256: str
    weights_sha256: str
    weight_files: dict[str, int]
    """Weight file name -> size in bytes (informative)."""


def resolve_base_folder(spec: str) -> Path:
    """A local model folder for ``spec`` ("smollm2-135m-instruct" or a folder path).

    Raises:
        LEError: the spec names a hub id or nothing loadable (the LE never downloads).
    """
    try:
        provisioned = resolve_model(spec)
    except ProvisionError as exc:
        raise LEError(f"le.base_model {spec!r}: {exc}") from exc
    if provisioned.path is None:
        raise LEError(
            f"le.base_model {spec!r} is not a local model folder; the LE runs in-process and "
            "never downloads: give a Hugging Face model folder or 'smollm2-135m-instruct'"
        )
    return provisioned.path


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob(f"*{WEIGHT_SUFFIX}"))
    if not files:
        raise LEError(f"base model folder {folder} holds no {WEIGHT_SUFFIX} weights")
    return files


def _config_sha256(folder: Path) -> str:
    path = folder / CONFIG_FILE
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LEError(f"cannot read the base model config {path}: {exc}") from exc
    kept = {k: v for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}
    blob = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    return flat.view(torch.uint8).numpy().tobytes()


def _weights_sha256(files: list[Path]) -> str:
    from safetensors import SafetensorError, safe_open

    digest = hashlib.sha256()
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for name in sorted(handle.keys()):
                    tensor = handle.get_tensor(name)
                    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
                    digest.update(_tensor_bytes(tensor))
        except (OSError, SafetensorError) as exc:
            raise LEError(f"cannot read base model weights {path}: {exc}") from exc
    return digest.hexdigest()


def fingerprint_base(folder: Path) -> BaseFingerprint:
    """The fingerprint of a base model folder (cached per process by file size and mtime)."""
    files = _weight_files(folder)
    stats = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    config = folder / CONFIG_FILE
    config_stat = (
        (CONFIG_FILE, config.stat().st_size, config.stat().st_mtime_ns) if config.is_file() else ()
    )
    key = (str(folder.resolve()), (*stats, config_stat))
    cached = _FINGERPRINTS.get(key)
    if cached is not None:
        return cached
    fingerprint = BaseFingerprint(
        config_sha256=_config_sha256(folder),
        weights_sha256=_weights_sha256(files),
        weight_files={name: size for name, size, _ in stats},
    )
    _FINGERPRINTS[key] = fingerprint
    return fingerprint


def check_base(expected: BaseFingerprint, folder: Path, checkpoint: Path) -> None:
    """Raise if ``folder`` is not the base model ``checkpoint`` was trained on.

    Raises:
        CheckpointMismatchError: the config or the weights differ (the message says which).
    """
    actual = fingerprint_base(folder)
    if actual.config_sha256 != expected.config_sha256:
        raise CheckpointMismatchError(
            f"LE checkpoint {checkpoint} does not match the base model: the config of {folder} "
            f"has sha256 {actual.config_sha256[:12]}, the checkpoint was trained on a model whose "
            f"config has sha256 {expected.config_sha256[:12]}"
        )
    if actual.weights_sha256 != expected.weights_sha256:
        raise CheckpointMismatchError(
            f"LE checkpoint {checkpoint} does not match the base model: the weights of {folder} "
            f"({actual.weight_files}) have sha256 {actual.weights_sha256[:12]}, the checkpoint "
            f"expects {expected.weights_sha256[:12]} ({expected.weight_files})"
        )


def load_base(folder: Path, dtype: str, attn_implementation: str) -> Any:
    """Load the causal LM in ``folder`` frozen, in eval mode, offline.

    Raises:
        CheckpointError: transformers cannot load the folder.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder),
            dtype=DTYPES[dtype],
            attn_implementation=attn_implementation,
            local_files_only=True,
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load the base model from {folder}: {exc}") from exc
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def load_tokenizer(folder: Path) -> Any:
    """The base model's tokenizer (offline)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise LEError(f"cannot load the tokenizer of {folder}: {exc}") from exc
