"""Embeddings of the catalogue, for grounding free text and ranking candidates.

The catalogue is embedded once per (catalogue, embedder, numeric environment) and cached on
disk as a plain ``.npy`` array (loaded with ``allow_pickle=False``), so later runs start at
once; an embedding computed under another SIMD level or torch version is never read (see
:mod:`billp.common.numerics`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Collection
from pathlib import Path

import faiss
import numpy as np

from billp.common.atomic_io import write_bytes_atomic
from billp.common.numerics import numeric_fingerprint
from billp.common.paths import user_cache_dir
from billp.data import Catalogue
from billp.memory import Embedder

log = logging.getLogger(__name__)

GROUNDING_SEARCH_K = 32
"""Nearest titles inspected when the closest ones are excluded (already recommended)."""
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")


def _normalise_title(text: str) -> str:
    return " ".join(_YEAR_SUFFIX.sub("", text).casefold().split())


class ItemIndex:
    """Normalised item embeddings plus a FAISS index over them."""

    def __init__(self, catalogue: Catalogue, embedder: Embedder, cache_dir: Path | None = None):
        self.catalogue = catalogue
        self.embedder = embedder
        self.vectors = self._load_or_embed(cache_dir or user_cache_dir())
        self._index = faiss.IndexFlatIP(self.vectors.shape[1])
        self._index.add(self.vectors)
        self._by_title: dict[str, int] = {}
        for item in catalogue:
            self._by_title.setdefault(_normalise_title(item.title), item.item_id)

    def _load_or_embed(self, cache_dir: Path) -> np.ndarray:
        key = hashlib.sha256(
            f"{self.catalogue.fingerprint}|{self.embedder.name}|{self.embedder.dim}|"
            f"{numeric_fingerprint()}".encode()
        ).hexdigest()[:24]
        path = cache_dir / "item_embeddings" / f"{key}.npy"
        if path.is_file():
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(self.catalogue), self.embedder.dim):
                return vectors.astype(np.float32, copy=False)
            log.warning("ignoring item-embedding cache %s with shape %s", path, vectors.shape)
        vectors = np.asarray(
            self.embedder.embed([item.text for item in self.catalogue]), dtype=np.float32
        )
        buffer = io.BytesIO()
        np.save(buffer, vectors, allow_pickle=False)
        write_bytes_atomic(path, buffer.getvalue())
        return vectors

    def profile(self, items: Collection[int]) -> np.ndarray:
        """The normalised mean embedding of ``items`` (zeros when empty)."""
        if not items:
            return np.zeros(self.vectors.shape[1], dtype=np.float32)
        mean = self.vectors[list(items)].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else mean

    def ground(self, text: str, exclude: Collection[int] = ()) -> int | None:
        """The catalogue item whose title best matches free ``text``, skipping ``exclude``.

        An exact title match (case and year suffix ignored) wins; otherwise the nearest
        title in embedding space. Returns ``None`` for blank text or when every inspected
        neighbour is excluded.
        """
        cleaned = text.strip().strip("\"'[]{}").strip()
        if not cleaned:
            return None
        exact = self._by_title.get(_normalise_title(cleaned))
        if exact is not None and exact not in exclude:
            return exact
        query = np.asarray(self.embedder.embed([cleaned]), dtype=np.float32)
        k = min(len(self.catalogue), GROUNDING_SEARCH_K + len(exclude))
        _, ids = self._index.search(query, k)
        for item_id in ids[0]:
            if item_id >= 0 and int(item_id) not in exclude:
                return int(item_id)
        return None
