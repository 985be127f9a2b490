"""The on-disk cache of LE features: safetensors arrays plus a JSON manifest (never pickle),
keyed by a sha256 over everything the cached arrays depend on, the numeric environment
(:mod:`billp.common.numerics`: library versions, SIMD level) included."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save

from billp.common.atomic_io import write_bytes_atomic, write_text_atomic
from billp.common.numerics import numeric_environment, numeric_fingerprint

FEATURE_VERSION = "billp-rl-features-1"


class FeatureCacheError(RuntimeError):
    """A cached feature file is unreadable or does not match its manifest."""


def cache_key(*parts: object) -> str:
    """sha256 over the given parts (arrays by their bytes, others by their repr) and the
    numeric environment."""
    digest = hashlib.sha256(f"{FEATURE_VERSION}\n{numeric_fingerprint()}".encode())
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()


def write_cache(
    folder: Path, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Both files atomically (a temporary file of their own, then a rename): processes that
    fill the same entry at once each leave a whole file (the first write creates ``folder``)."""
    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    write_bytes_atomic(folder / f"{key}.safetensors", data)
    meta = {**meta, "numeric_environment": numeric_environment()}
    write_text_atomic(folder / f"{key}.json", json.dumps(meta, indent=2) + "\n")


def read_cache(folder: Path, key: str, expected: Sequence[str]) -> dict[str, np.ndarray] | None:
    path = folder / f"{key}.safetensors"
    if not path.is_file():
        return None
    try:
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise FeatureCacheError(
            f"feature cache {path} is unreadable ({exc}); delete it to recompute"
        ) from exc
    missing = [name for name in expected if name not in arrays]
    if missing:
        raise FeatureCacheError(f"feature cache {path} lacks {missing}; delete it to recompute")
    return arrays
