"""An incremental, persistent FAISS memory of (key text, typed payload) entries.

:class:`VectorMemory` keeps the entries and their index in memory and saves them to a folder
(format: :mod:`billp.memory.folder_format`; crash-safe writes:
:mod:`billp.memory.folder_writes`). A save that dies at any point leaves the memory loadable in
its previous committed state.

One process writes a memory folder at a time (the runner owns it); readers may open it freely.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

import faiss
import numpy as np
from pydantic import ValidationError

from billp.common.atomic_io import write_bytes_atomic
from billp.memory.embedders import Embedder, normalise_rows
from billp.memory.folder_format import (
    BACKUP_SUFFIX,
    DATA_FILES,
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    PAYLOADS_FILE,
    MemoryMeta,
    MemoryStoreError,
    P,
    PayloadLine,
    parse_index,
    read_meta,
    read_verified,
    sha256,
)
from billp.memory.folder_writes import atomic_backup, remove_stray_temps

__all__ = [
    "MAX_COSINE",
    "MIN_COSINE",
    "MemoryHit",
    "VectorMemory",
]


MAX_COSINE = 1.0
MIN_COSINE = -1.0


@dataclass(frozen=True)
class MemoryHit(Generic[P]):
    """One retrieved entry: its id, cosine similarity to the query, key text and payload."""

    id: int
    score: float
    key: str
    payload: P


_atomic_write = write_bytes_atomic
"""The writer of every memory file (a module name, so tests can wrap it)."""


class VectorMemory(Generic[P]):
    """Key texts embedded once into a FAISS inner-product index, each with a typed payload.

    Vectors are unit-norm, so scores are cosine similarities. Adding embeds only the new keys;
    nothing stored is re-embedded and the index is never rebuilt. :meth:`upsert` replaces the
    payload of an existing key in place. Changes reach the disk on :meth:`save`.
    """

    def __init__(self, directory: Path, embedder: Embedder, payload_type: type[P]) -> None:
        """Open the memory in ``directory`` (empty if it holds no ``meta.json``).

        Raises:
            MemoryStoreError: the files are corrupt, inconsistent, or were written with
                another embedder (name or dimension).
        """
        self.directory = Path(directory)
        self.embedder = embedder
        self.payload_type = payload_type
        self.committed: set[str] = set()
        self._line_type: type[PayloadLine[P]] = PayloadLine[payload_type]  # type: ignore[valid-type]
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dim))
        self._keys: list[str] = []
        self._payloads: list[P] = []
        self._latest_id: dict[str, int] = {}
        self._disk_checksums: dict[str, str] = {}
        self._dirty = False
        self._on_disk = False
        self._save_failed: tuple[Exception, frozenset[str]] | None = None
        self._lock = threading.RLock()
        self._load()

    # ------------------------------------------------------------------ loading

    def _path(self, name: str) -> Path:
        return self.directory / name

    def _load(self) -> None:
        meta_path = self._path(META_FILE)
        if not meta_path.is_file():
            present = [name for name in DATA_FILES if self._path(name).exists()]
            if present:
                raise MemoryStoreError(
                    f"{meta_path} is missing but {', '.join(present)} exist(s) in "
                    f"{self.directory}: not a complete billp memory"
                )
            return
        meta = read_meta(meta_path, self.embedder)
        self._on_disk = True
        if not meta.checksums:  # the empty commit that precedes a memory's first save
            if meta.count != 0:
                raise MemoryStoreError(f"{meta_path}: {meta.count} entries but no checksums")
            self.committed = set(meta.committed)
            return
        index_bytes = read_verified(self.directory, INDEX_FILE, meta)
        payload_bytes = read_verified(self.directory, PAYLOADS_FILE, meta)
        self._index = parse_index(self._path(INDEX_FILE), index_bytes, meta)
        self._parse_payloads(payload_bytes, meta)
        self.committed = set(meta.committed)
        self._disk_checksums = dict(meta.checksums)

    def _parse_payloads(self, data: bytes, meta: MemoryMeta) -> None:
        path = self._path(PAYLOADS_FILE)
        # Split on "\n" only: str.splitlines() would also split inside JSON strings holding
        # U+2028 and other Unicode line breaks, which JSON leaves unescaped.
        text = data.decode("utf-8")
        lines = text.split("\n")[:-1] if text else []
        if len(lines) != meta.count:
            raise MemoryStoreError(f"{path}: {len(lines)} lines, meta.json says {meta.count}")
        for number, line in enumerate(lines):
            try:
                record = self._line_type.model_validate_json(line)
            except ValidationError as exc:
                raise MemoryStoreError(
                    f"{path} line {number + 1}: not a valid "
                    f"{self.payload_type.__name__} entry: {exc}"
                ) from exc
            if record.id != number:
                raise MemoryStoreError(
                    f"{path} line {number + 1}: id {record.id}, expected {number}"
                )
            self._keys.append(record.key)
            self._payloads.append(record.payload)
            self._latest_id[record.key] = number

    # ------------------------------------------------------------------ writing

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        expected = (len(texts), self.embedder.dim)
        if vectors.shape != expected:
            raise ValueError(
                f"embedder '{self.embedder.name}' returned shape {vectors.shape}, "
                f"expected {expected}"
            )
        return np.ascontiguousarray(normalise_rows(vectors))

    def _check_payload(self, payload: P) -> P:
        if not isinstance(payload, self.payload_type):
            raise TypeError(
                f"payload must be a {self.payload_type.__name__}, got {type(payload).__name__}"
            )
        return payload.model_copy(deep=True)

    def add(self, key: str, payload: P) -> int:
        """Add a new entry (even if ``key`` exists) and return its id."""
        return self.add_many([key], [payload])[0]

    def add_many(self, keys: Sequence[str], payloads: Sequence[P]) -> list[int]:
        """Add entries with one embed call; return their ids in order."""
        if isinstance(keys, str):
            raise TypeError("add_many() takes a sequence of keys, not a single string")
        if len(keys) != len(payloads):
            raise ValueError(f"add_many: {len(keys)} keys but {len(payloads)} payloads")
        if not keys:
            return []
        stored = [self._check_payload(payload) for payload in payloads]
        vectors = self._embed(keys)
        with self._lock:
            first = len(self._keys)
            ids = np.arange(first, first + len(keys), dtype=np.int64)
            self._index.add_with_ids(vectors, ids)
            for offset, (key, payload) in enumerate(zip(keys, stored, strict=True)):
                self._keys.append(key)
                self._payloads.append(payload)
                self._latest_id[key] = first + offset
            self._dirty = True
            return ids.tolist()

    def upsert(self, key: str, payload: P) -> int:
        """Replace the payload of ``key``'s latest entry (no re-embedding), or add it."""
        stored = self._check_payload(payload)
        with self._lock:  # held while a new key is embedded, so two upserts cannot both add it
            existing = self._latest_id.get(key)
            if existing is not None:
                self._payloads[existing] = stored
                self._dirty = True
                return existing
            return self.add(key, stored)

    # ------------------------------------------------------------------ reading

    def get(self, key: str) -> P | None:
        """The payload of ``key``'s latest entry, or ``None``."""
        with self._lock:
            existing = self._latest_id.get(key)
            if existing is None:
                return None
            return self._payloads[existing].model_copy(deep=True)

    def _hit(self, entry_id: int, score: float) -> MemoryHit[P]:
        return MemoryHit(
            id=entry_id,
            score=score,
            key=self._keys[entry_id],
            payload=self._payloads[entry_id].model_copy(deep=True),
        )

    def search(self, query: str, k: int, min_score: float = MIN_COSINE) -> list[MemoryHit[P]]:
        """The ``k`` entries most similar to ``query`` with score >= ``min_score``, best first."""
        if k <= 0 or len(self) == 0:
            return []
        vector = self._embed([query])
        with self._lock:
            scores, ids = self._index.search(vector, min(k, self._index.ntotal))
            hits = []
            for score, entry_id in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                clipped = min(MAX_COSINE, max(MIN_COSINE, float(score)))
                if entry_id >= 0 and clipped >= min_score:
                    hits.append(self._hit(int(entry_id), clipped))
            return hits

    def recent(self, n: int) -> list[MemoryHit[P]]:
        """The last ``n`` entries added, newest last, each with score 1.0."""
        with self._lock:
            if n <= 0:
                return []
            start = max(0, len(self._keys) - n)
            return [self._hit(entry_id, MAX_COSINE) for entry_id in range(start, len(self._keys))]

    def __len__(self) -> int:
        return len(self._keys)

    # ------------------------------------------------------------------ saving

    def save(self, committed: Iterable[str] = ()) -> None:
        """Persist all entries and add ``committed`` episode keys to :attr:`committed`.

        Data files are replaced first (their committed versions kept as ``.prev``), then
        ``meta.json``; a failure anywhere leaves the previous save loadable. Nothing is written
        when nothing changed since the last save.
        """
        committed = frozenset(committed)
        with self._lock:
            if self._save_failed is not None and self._save_failed[1] != committed:
                # Entries of the failed commit are still in memory: saving them for another
                # episode would persist writes whose episode is not recorded as committed.
                # (Retrying the failed save itself is fine.)
                failed = self._save_failed[0]
                if isinstance(failed, OSError):
                    raise OSError(
                        failed.errno,
                        f"{failed.strerror} (an earlier save of this memory failed)",
                        failed.filename,
                    )
                raise MemoryStoreError(f"{self.directory}: an earlier save failed: {failed}")
            try:
                self._save(committed)
            except Exception as exc:
                self._save_failed = (exc, committed)
                raise
            self._save_failed = None

    def _save(self, committed: Iterable[str]) -> None:
        with self._lock:
            new_committed = self.committed | set(committed)
            if not self._dirty and new_committed == self.committed and self._on_disk:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            remove_stray_temps(self.directory)
            if not self._path(META_FILE).exists():
                # Commit an empty memory first, so that data files never exist without a meta.
                self._write_meta(count=0, committed=[], checksums={})
            contents = {INDEX_FILE: self._index_bytes(), PAYLOADS_FILE: self._payload_bytes()}
            checksums = {name: sha256(data) for name, data in contents.items()}
            for name, data in contents.items():
                if checksums[name] == self._disk_checksums.get(name) and self._holds(name):
                    continue
                self._keep_committed_version(name)
                _atomic_write(self._path(name), data)
            self._write_meta(len(self._keys), sorted(new_committed), checksums)
            self.committed = new_committed
            self._disk_checksums = checksums
            self._dirty = False
            self._on_disk = True

    def _write_meta(self, count: int, committed: list[str], checksums: dict[str, str]) -> None:
        meta = MemoryMeta(
            format=FORMAT_VERSION,
            embedder=self.embedder.name,
            dim=self.embedder.dim,
            count=count,
            committed=committed,
            checksums=checksums,
        )
        _atomic_write(self._path(META_FILE), meta.model_dump_json(indent=2).encode("utf-8"))

    def _index_bytes(self) -> bytes:
        return faiss.serialize_index(self._index).tobytes()

    def _payload_bytes(self) -> bytes:
        lines = [
            self._line_type(id=entry_id, key=key, payload=payload).model_dump_json() + "\n"
            for entry_id, (key, payload) in enumerate(zip(self._keys, self._payloads, strict=True))
        ]
        return "".join(lines).encode("utf-8")

    def _holds(self, name: str) -> bool:
        """Whether ``name`` itself (not only its backup) holds the committed version."""
        try:
            return sha256(self._path(name).read_bytes()) == self._disk_checksums.get(name)
        except FileNotFoundError:
            return False

    def _keep_committed_version(self, name: str) -> None:
        """Make sure ``<name>.prev`` holds the committed version before ``name`` is replaced."""
        expected = self._disk_checksums.get(name)
        if expected is None:
            return
        backup = self._path(name + BACKUP_SUFFIX)
        if self._holds(name):
            atomic_backup(self._path(name), backup)
            return
        with contextlib.suppress(FileNotFoundError):
            if sha256(backup.read_bytes()) == expected:
                return
        raise MemoryStoreError(
            f"{self._path(name)}: neither it nor {backup.name} matches the committed version "
            f"recorded in {self._path(META_FILE)}; refusing to overwrite it"
        )
