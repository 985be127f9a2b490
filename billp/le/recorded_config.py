"""The settings an LE checkpoint's manifest records, read back, and the config file that
reproduces the checkpoint (``config.toml``)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from billp.config import DataConfig, LEConfig, LETrainConfig, config_to_toml_dict
from billp.le.checkpoint import LEManifest
from billp.le.errors import LEError


def manifest_config(
    data_config: DataConfig, le_config: LEConfig, train: LETrainConfig
) -> dict[str, Any]:
    """The settings a manifest records: ``data``, and ``le`` with the training settings under
    ``le.train`` (the layout of every manifest so far; :func:`recorded_train_config` reads it)."""
    return {
        "data": data_config.model_dump(mode="json"),
        "le": {**le_config.model_dump(mode="json"), "train": train.model_dump(mode="json")},
    }


def recorded_train_config(manifest: LEManifest) -> LETrainConfig:
    """The training settings a checkpoint's manifest records (``config.le.train``).

    Manifests written before ``learn_test_users`` existed lack it; that code learned from the
    train users only, so their value is ``False`` (not today's default).

    Raises:
        LEError: the manifest records none, or invalid ones.
    """
    try:
        recorded = dict(manifest.config["le"]["train"])
        recorded.setdefault("learn_test_users", False)
        return LETrainConfig.model_validate(recorded)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise LEError(f"the LE manifest records no valid training settings: {exc}") from None


def reproduce_toml(le_config: LEConfig, train: LETrainConfig, data_config: DataConfig) -> str:
    """The config file that reproduces a checkpoint (``--config`` of ``billp.le train``)."""
    import tomli_w

    tree = {
        "data": config_to_toml_dict(data_config),
        "env": {"le": config_to_toml_dict(le_config.model_copy(update={"checkpoint": None}))},
        "train": config_to_toml_dict(train),
    }
    header = "# Reproduce with: python -m billp.le train --config THIS_FILE --out FOLDER\n"
    return header + tomli_w.dumps(tree)
