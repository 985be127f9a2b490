"""The on-disk format of a memory folder, and reading and checking its files.

A memory is a folder of three files:

* ``index.faiss`` — ``IndexIDMap2(IndexFlatIP(dim))`` over the unit-norm key embeddings;
  ids are 0, 1, 2, ... in the order entries were added;
* ``payloads.jsonl`` — one line ``{"id", "key", "payload"}`` per id, in id order;
* ``meta.json`` — embedder name and dimension, entry count, the committed episode keys and the
  sha256 of the two data files. It is written last and is the commit point of a save
  (a memory's very first save commits an empty ``meta.json`` before any data file).

A data file's committed version may also be its ``<file>.prev`` backup (see
:mod:`billp.memory.folder_writes`): readers take whichever matches the checksum in ``meta.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from pathlib import Path
from typing import Generic, TypeVar

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from billp.memory.embedders import Embedder

P = TypeVar("P", bound=BaseModel)


INDEX_FILE = "index.faiss"
PAYLOADS_FILE = "payloads.jsonl"
META_FILE = "meta.json"
DATA_FILES = (INDEX_FILE, PAYLOADS_FILE)
BACKUP_SUFFIX = ".prev"
TEMP_SUFFIX = ".tmp"
FORMAT_VERSION = 1


class MemoryStoreError(RuntimeError):
    """A memory folder is corrupt or does not match the embedder; the message names the file."""


class MemoryMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int
    embedder: str
    dim: int = Field(ge=1)
    count: int = Field(ge=0)
    committed: list[str]
    checksums: dict[str, str]


class PayloadLine(BaseModel, Generic[P]):
    model_config = ConfigDict(extra="forbid")

    id: int
    key: str
    payload: P


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_HEADER = struct.Struct("<4siqqqBi")
"""FAISS index header: fourcc, d, ntotal, two unused int64, is_trained, metric type."""
_SIZE = struct.Struct("<q")
_METRIC_INNER_PRODUCT = 0


def index_layout_problem(data: bytes, dim: int, count: int) -> str | None:
    """Why ``data`` is not a serialised ``IndexIDMap2(IndexFlatIP(dim))`` of ``count`` vectors.

    Checked byte by byte before FAISS deserialises anything, so that a damaged or crafted
    file (whose checksum an edited ``meta.json`` may match) never reaches FAISS's reader.
    """
    if len(data) < 2 * _HEADER.size + 2 * _SIZE.size:
        return f"only {len(data)} bytes (truncated)"
    for offset, fourcc in ((0, b"IxM2"), (_HEADER.size, b"IxFI")):
        magic, d, ntotal, _, _, _, metric = _HEADER.unpack_from(data, offset)
        if magic != fourcc:
            return f"header {magic!r} at byte {offset}, expected {fourcc!r}"
        if ntotal != count:
            return f"holds {ntotal} vectors, meta.json says {count}"
        if d != dim:
            return f"index dimension {d}, meta.json says {dim}"
        if metric != _METRIC_INNER_PRODUCT:
            return f"metric type {metric}, expected inner product ({_METRIC_INNER_PRODUCT})"
    expected = 2 * _HEADER.size + 2 * _SIZE.size + 4 * dim * count + 8 * count
    if len(data) != expected:
        return f"{len(data)} bytes, expected {expected} for {count} vectors of dimension {dim}"
    codes_at = 2 * _HEADER.size
    (floats,) = _SIZE.unpack_from(data, codes_at)
    if floats != dim * count:
        return f"vector data of {floats} floats, expected {dim * count}"
    (ids,) = _SIZE.unpack_from(data, codes_at + _SIZE.size + 4 * floats)
    if ids != count:
        return f"{ids} ids, expected {count}"
    return None


def verify_memory_folder(directory: Path) -> None:
    """Check a saved memory folder without opening it: meta, checksums, index layout.

    Raises:
        MemoryStoreError: naming the file that is missing, damaged or inconsistent.
    """
    directory = Path(directory)
    meta_path = directory / META_FILE
    try:
        meta = MemoryMeta.model_validate_json(meta_path.read_bytes())
    except FileNotFoundError:
        raise MemoryStoreError(f"{meta_path} is missing: not a saved billp memory") from None
    except (OSError, ValidationError) as exc:
        raise MemoryStoreError(f"{meta_path}: not a valid billp memory meta file: {exc}") from None
    if not meta.checksums:
        return
    for name in DATA_FILES:
        expected = meta.checksums.get(name)
        if expected is None:
            raise MemoryStoreError(f"{meta_path}: no checksum for {name}")
        data = None
        for candidate in (directory / name, directory / (name + BACKUP_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                raw = candidate.read_bytes()
                if sha256(raw) == expected:
                    data = raw
                    break
        if data is None:
            raise MemoryStoreError(
                f"{directory / name}: missing or does not match the sha256 recorded in "
                f"{meta_path} (changed outside billp?)"
            )
        if name == INDEX_FILE:
            problem = index_layout_problem(data, meta.dim, meta.count)
            if problem is not None:
                raise MemoryStoreError(f"{directory / name}: {problem}")


def read_meta(meta_path: Path, embedder: Embedder) -> MemoryMeta:
    """``meta.json`` of a memory opened with ``embedder``, checked against it."""
    try:
        meta = MemoryMeta.model_validate_json(meta_path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise MemoryStoreError(f"{meta_path}: not a valid billp memory meta file: {exc}") from exc
    if meta.format != FORMAT_VERSION:
        raise MemoryStoreError(
            f"{meta_path}: format {meta.format} is not supported (expected {FORMAT_VERSION})"
        )
    if meta.embedder != embedder.name or meta.dim != embedder.dim:
        raise MemoryStoreError(
            f"{meta_path}: written with embedder '{meta.embedder}' (dim {meta.dim}), "
            f"opened with '{embedder.name}' (dim {embedder.dim}); "
            "use the same embedder or start a new memory"
        )
    missing = [name for name in DATA_FILES if name not in meta.checksums]
    if meta.checksums and missing:
        raise MemoryStoreError(f"{meta_path}: no checksum for {', '.join(missing)}")
    return meta


def read_verified(directory: Path, name: str, meta: MemoryMeta) -> bytes:
    """The bytes of ``name`` (or its ``.prev`` backup) that match the checksum in meta."""
    expected = meta.checksums[name]
    for candidate in (directory / name, directory / (name + BACKUP_SUFFIX)):
        with contextlib.suppress(FileNotFoundError):
            data = candidate.read_bytes()
            if sha256(data) == expected:
                return data
    raise MemoryStoreError(
        f"{directory / name}: missing or does not match the sha256 recorded in "
        f"{directory / META_FILE} (changed outside billp?), and no matching "
        f"{name}{BACKUP_SUFFIX} exists"
    )


def parse_index(path: Path, data: bytes, meta: MemoryMeta) -> faiss.IndexIDMap2:
    """The FAISS index in ``data`` (the bytes of ``path``), checked against ``meta``."""
    problem = index_layout_problem(data, meta.dim, meta.count)
    if problem is not None:  # never hand FAISS bytes of another shape
        raise MemoryStoreError(f"{path}: {problem}")
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise MemoryStoreError(f"{path}: not a readable FAISS index: {exc}") from exc
    if not isinstance(index, faiss.IndexIDMap2):
        raise MemoryStoreError(f"{path}: expected an IndexIDMap2, found {type(index).__name__}")
    if index.d != meta.dim:
        raise MemoryStoreError(f"{path}: index dimension {index.d}, meta.json says {meta.dim}")
    if index.ntotal != meta.count:
        raise MemoryStoreError(f"{path}: holds {index.ntotal} vectors, meta.json says {meta.count}")
    ids = faiss.vector_to_array(index.id_map)
    if not np.array_equal(ids, np.arange(meta.count, dtype=np.int64)):
        raise MemoryStoreError(f"{path}: ids are not 0..{meta.count - 1} in order")
    return index
