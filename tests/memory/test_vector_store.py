"""VectorMemory: incremental adds, upserts without re-embedding, search, atomic persistence."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from pydantic import BaseModel

from billp.memory import folder_format, folder_writes, vector_store
from billp.memory.embedders import HashEmbedder
from billp.memory.folder_format import MemoryStoreError
from billp.memory.vector_store import MemoryHit, VectorMemory

REPLACES_PER_FIRST_SAVE = 4  # empty meta, index, payloads, meta
REPLACES_PER_LATER_SAVE = 5  # index backup, index, payloads backup, payloads, meta


class Note(BaseModel):
    text: str
    score: float
    tags: dict[int, int] = {}


class CountingEmbedder:
    """Wraps the hash embedder and records every text it is asked to embed."""

    def __init__(self, name: str = "hash", dim: int = 64) -> None:
        self.inner = HashEmbedder(dim)
        self.name = name
        self.dim = dim
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.embed(texts)


def _note(i: int) -> Note:
    return Note(text=f"note {i}", score=i / 3 + 0.1, tags={i: -i})


KEYS = ["comedy fan watching cartoons", "thriller fan watching heist movies", "drama lover"]


def _filled(directory: Path, embedder: CountingEmbedder | None = None) -> VectorMemory[Note]:
    memory = VectorMemory(directory, embedder or CountingEmbedder(), Note)
    memory.add_many(KEYS, [_note(i) for i in range(len(KEYS))])
    return memory


def _snapshot(memory: VectorMemory[Note]) -> list[tuple[int, str, dict[str, Any]]]:
    return [(hit.id, hit.key, hit.payload.model_dump()) for hit in memory.recent(len(memory))]


def _reopen(directory: Path, embedder: CountingEmbedder | None = None) -> VectorMemory[Note]:
    return VectorMemory(directory, embedder or CountingEmbedder(), Note)


def _count_replaces(
    monkeypatch: pytest.MonkeyPatch, fail_on: int | None = None
) -> Callable[[], int]:
    """Patch os.replace to count calls and raise on call number ``fail_on``."""
    real_replace = os.replace
    calls = [0]

    def replace(src: Any, dst: Any) -> None:
        calls[0] += 1
        if calls[0] == fail_on:
            raise OSError(f"simulated crash on os.replace #{fail_on} ({dst})")
        real_replace(src, dst)

    monkeypatch.setattr(folder_writes.os, "replace", replace)
    return lambda: calls[0]


# ---------------------------------------------------------------- in memory


def test_empty_memory(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    memory = VectorMemory(tmp_path / "mem", embedder, Note)
    assert len(memory) == 0
    assert memory.search("anything", k=5) == []
    assert memory.recent(3) == []
    assert memory.get("anything") is None
    assert memory.committed == set()
    assert embedder.calls == []
    assert not (tmp_path / "mem").exists()


def test_add_assigns_sequential_ids_and_get_returns_latest(tmp_path: Path) -> None:
    memory = VectorMemory(tmp_path, CountingEmbedder(), Note)
    assert memory.add("a", _note(0)) == 0
    assert memory.add_many(["b", "c"], [_note(1), _note(2)]) == [1, 2]
    assert memory.add("a", _note(3)) == 3  # add never merges: a second entry for "a"
    assert len(memory) == 4
    assert memory.get("a") == _note(3)
    assert memory.get("b") == _note(1)
    assert memory.add_many([], []) == []


def test_add_validates_arguments(tmp_path: Path) -> None:
    memory = VectorMemory(tmp_path, CountingEmbedder(), Note)

    class Other(BaseModel):
        text: str

    with pytest.raises(TypeError, match="payload must be a Note, got Other"):
        memory.add("a", Other(text="x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 keys but 1 payloads"):
        memory.add_many(["a", "b"], [_note(0)])
    with pytest.raises(TypeError, match="not a single string"):
        memory.add_many("ab", [_note(0), _note(1)])
    assert len(memory) == 0


def test_nothing_stored_is_ever_re_embedded(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    memory = _filled(tmp_path, embedder)
    index = memory._index
    assert embedder.calls == [KEYS]  # add_many: one embed call

    assert memory.upsert(KEYS[1], _note(9)) == 1
    assert embedder.calls == [KEYS]  # upsert of an existing key: no embedding
    assert memory.get(KEYS[1]) == _note(9)
    assert len(memory) == len(KEYS)

    assert memory.upsert("a brand new state", _note(4)) == 3
    memory.add("another state", _note(5))
    assert embedder.calls[1:] == [["a brand new state"], ["another state"]]
    assert memory._index is index and index.ntotal == 5  # grown in place, never rebuilt

    memory.save()
    loader = CountingEmbedder()
    reloaded = _reopen(tmp_path, loader)
    assert loader.calls == []  # loading embeds nothing
    reloaded.add("after reload", _note(6))
    assert loader.calls == [["after reload"]]
    assert len(reloaded) == 6


def test_search_scores_order_and_limits(tmp_path: Path) -> None:
    memory = _filled(tmp_path)
    hits = memory.search(KEYS[1], k=10)
    assert len(hits) == len(KEYS)  # k larger than the memory
    assert hits[0] == MemoryHit(id=1, score=pytest.approx(1.0), key=KEYS[1], payload=_note(1))
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= score <= 1.0 for score in scores)
    vectors = HashEmbedder().embed([KEYS[1], *KEYS])
    expected = sorted(float(vectors[0] @ vectors[i + 1]) for i in range(len(KEYS)))[::-1]
    np.testing.assert_allclose(scores, expected, atol=1e-6)

    assert [hit.id for hit in memory.search(KEYS[1], k=1)] == [1]
    assert memory.search(KEYS[1], k=0) == []
    above = memory.search(KEYS[1], k=10, min_score=scores[1])
    assert [hit.score for hit in above] == scores[:2]
    assert memory.search("zzz qqq", k=3, min_score=0.999) == []


def test_returned_payloads_are_copies(tmp_path: Path) -> None:
    memory = _filled(tmp_path)
    memory.search(KEYS[0], k=1)[0].payload.tags[99] = 1
    fetched = memory.get(KEYS[0])
    assert fetched is not None
    fetched.tags[98] = 1
    payload = _note(7)
    memory.add("mine", payload)
    payload.text = "changed by the caller"
    assert memory.get(KEYS[0]) == _note(0)
    assert memory.get("mine") == _note(7)


def test_recent_is_newest_last(tmp_path: Path) -> None:
    memory = _filled(tmp_path)
    recent = memory.recent(2)
    assert [(hit.id, hit.key, hit.score) for hit in recent] == [
        (1, KEYS[1], 1.0),
        (2, KEYS[2], 1.0),
    ]
    assert [hit.id for hit in memory.recent(10)] == [0, 1, 2]
    assert memory.recent(0) == []


# ---------------------------------------------------------------- persistence


def test_save_and_load_round_trip_exactly(tmp_path: Path) -> None:
    memory = _filled(tmp_path)
    tricky = Note(text='ünïcode ✓ "quoted"\nline\u2028sep', score=0.1 + 0.2, tags={3: 1})
    memory.upsert(KEYS[0], tricky)
    memory.save(["episode-b", "episode-a"])
    reloaded = _reopen(tmp_path)

    assert _snapshot(reloaded) == _snapshot(memory)
    assert reloaded.get(KEYS[0]) == tricky
    assert reloaded.committed == {"episode-a", "episode-b"}
    for query in [*KEYS, "fan of cartoons"]:
        assert reloaded.search(query, k=3) == memory.search(query, k=3)
    assert bytes(faiss.serialize_index(reloaded._index)) == bytes(
        faiss.serialize_index(memory._index)
    )

    meta = json.loads((tmp_path / "meta.json").read_text())
    assert (meta["embedder"], meta["dim"], meta["count"]) == ("hash", 64, 3)
    assert meta["committed"] == ["episode-a", "episode-b"]
    lines = (tmp_path / "payloads.jsonl").read_bytes().decode("utf-8").split("\n")[:-1]
    assert [json.loads(line)["id"] for line in lines] == [0, 1, 2]
    payload = _note(2).model_dump(mode="json")
    assert json.loads(lines[2]) == {"id": 2, "key": KEYS[2], "payload": payload}
    assert faiss.read_index(str(tmp_path / "index.faiss")).ntotal == 3


def test_committed_accumulates_across_saves(tmp_path: Path) -> None:
    memory = _filled(tmp_path)
    memory.save(["ep1"])
    memory.add("more", _note(3))
    memory.save(["ep2"])
    assert memory.committed == {"ep1", "ep2"}
    assert _reopen(tmp_path).committed == {"ep1", "ep2"}


def test_unchanged_memory_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = _filled(tmp_path)
    memory.save()
    written: list[str] = []
    real_write = vector_store._atomic_write

    def counting_write(target: Path, data: bytes) -> None:
        written.append(target.name)
        real_write(target, data)

    monkeypatch.setattr(vector_store, "_atomic_write", counting_write)
    memory.save()
    assert written == []
    memory.save(["ep"])  # only the committed set changed
    assert written == ["meta.json"]
    memory.upsert(KEYS[0], _note(8))  # only a payload changed
    memory.save()
    assert written == ["meta.json", "payloads.jsonl", "meta.json"]
    assert _reopen(tmp_path).get(KEYS[0]) == _note(8)


# ---------------------------------------------------------------- validation on load


def test_other_embedder_is_refused(tmp_path: Path) -> None:
    _filled(tmp_path).save()
    with pytest.raises(MemoryStoreError, match=r"meta\.json.*embedder 'hash' \(dim 64\).*'other'"):
        _reopen(tmp_path, CountingEmbedder(name="other"))
    with pytest.raises(MemoryStoreError, match=r"meta\.json.*dim 32"):
        _reopen(tmp_path, CountingEmbedder(dim=32))


def test_count_mismatch_names_the_index(tmp_path: Path) -> None:
    _filled(tmp_path).save()
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["count"] = 5
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(MemoryStoreError, match=r"index\.faiss: holds 3 vectors, meta\.json says 5"):
        _reopen(tmp_path)


def test_edited_payloads_fail_the_checksum(tmp_path: Path) -> None:
    _filled(tmp_path).save()
    path = tmp_path / "payloads.jsonl"
    path.write_text(path.read_text().replace("note 1", "note X"))
    with pytest.raises(MemoryStoreError, match=r"payloads\.jsonl: missing or does not match"):
        _reopen(tmp_path)


def test_invalid_payload_line_is_named(tmp_path: Path) -> None:
    _filled(tmp_path).save()
    path = tmp_path / "payloads.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({"id": 1, "key": KEYS[1], "payload": {"text": "no score"}})
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["checksums"]["payloads.jsonl"] = folder_format.sha256(data)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(MemoryStoreError, match=r"payloads\.jsonl line 2: not a valid Note"):
        _reopen(tmp_path)


def test_garbage_meta_and_orphan_files_are_refused(tmp_path: Path) -> None:
    _filled(tmp_path).save()
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(MemoryStoreError, match=r"meta\.json: not a valid billp memory meta"):
        _reopen(tmp_path)
    (tmp_path / "meta.json").unlink()
    with pytest.raises(MemoryStoreError, match=r"meta\.json is missing but index\.faiss"):
        _reopen(tmp_path)


# ---------------------------------------------------------------- crash safety


def test_replace_counts_per_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    count = _count_replaces(monkeypatch)
    memory = _filled(tmp_path)
    memory.save()
    assert count() == REPLACES_PER_FIRST_SAVE
    memory.add("x", _note(3))
    memory.save()
    assert count() == REPLACES_PER_FIRST_SAVE + REPLACES_PER_LATER_SAVE


@pytest.mark.parametrize("fail_on", range(1, REPLACES_PER_FIRST_SAVE + 1))
def test_crash_during_first_save_leaves_an_empty_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on: int
) -> None:
    memory = _filled(tmp_path)
    count = _count_replaces(monkeypatch, fail_on)
    with pytest.raises(OSError, match="simulated crash"):
        memory.save(["ep1"])
    assert count() == fail_on
    monkeypatch.undo()
    reloaded = _reopen(tmp_path)
    assert len(reloaded) == 0 and reloaded.committed == set()
    memory.save(["ep1"])  # retrying the same save succeeds
    assert _snapshot(_reopen(tmp_path)) == _snapshot(memory)


@pytest.mark.parametrize("fail_on", range(1, REPLACES_PER_LATER_SAVE + 1))
def test_crash_during_save_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on: int
) -> None:
    memory = _filled(tmp_path)
    memory.save(["ep1"])
    before = _snapshot(_reopen(tmp_path))
    memory.upsert(KEYS[0], _note(10))
    memory.add("new state", _note(11))

    count = _count_replaces(monkeypatch, fail_on)
    with pytest.raises(OSError, match="simulated crash"):
        memory.save(["ep2"])
    assert count() == fail_on
    monkeypatch.undo()

    reloaded = _reopen(tmp_path)
    assert _snapshot(reloaded) == before
    assert reloaded.committed == {"ep1"}
    assert reloaded.search(KEYS[2], k=1)[0].key == KEYS[2]

    memory.save(["ep2"])  # the retried save succeeds and is what loads next
    after = _reopen(tmp_path)
    assert _snapshot(after) == _snapshot(memory)
    assert after.committed == {"ep1", "ep2"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_two_crashed_saves_in_a_row_keep_the_committed_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = _filled(tmp_path)
    memory.save(["ep1"])
    before = _snapshot(_reopen(tmp_path))

    memory.add("first unsaved", _note(20))
    _count_replaces(monkeypatch, fail_on=3)  # index.faiss already replaced
    with pytest.raises(OSError):
        memory.save(["ep2"])
    memory.upsert(KEYS[1], _note(21))
    _count_replaces(monkeypatch, fail_on=4)  # payloads.jsonl replaced too this time
    with pytest.raises(OSError):
        memory.save(["ep2"])
    monkeypatch.undo()

    survivor = _reopen(tmp_path)
    assert _snapshot(survivor) == before
    survivor.add("written by a resumed run", _note(22))  # a new process continues from there
    survivor.save(["ep3"])
    resumed = _reopen(tmp_path)
    assert _snapshot(resumed) == [*before, (3, "written by a resumed run", _note(22).model_dump())]
    assert resumed.committed == {"ep1", "ep3"}


def test_crash_while_writing_a_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = _filled(tmp_path)
    memory.save(["ep1"])
    before = _snapshot(_reopen(tmp_path))
    memory.add("unsaved", _note(3))

    def failing_fsync(fd: int) -> None:
        raise OSError("simulated disk failure")

    monkeypatch.setattr(folder_writes.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk failure"):
        memory.save(["ep2"])
    monkeypatch.undo()
    assert _snapshot(_reopen(tmp_path)) == before
    assert not list(tmp_path.glob(".*.tmp"))  # the half-written temp file was removed


def test_stray_temp_files_are_ignored_and_cleaned(tmp_path: Path) -> None:
    memory = _filled(tmp_path)
    memory.save(["ep1"])
    strays = [tmp_path / ".index.faiss.0badc0ffee00.tmp", tmp_path / ".meta.json.123456789abc.tmp"]
    for stray in strays:
        stray.write_bytes(b"half-written garbage")
    reloaded = _reopen(tmp_path)
    assert _snapshot(reloaded) == _snapshot(memory)
    reloaded.add("more", _note(3))
    reloaded.save()
    assert not any(stray.exists() for stray in strays)
    assert len(_reopen(tmp_path)) == 4


def test_backups_fall_back_to_copies_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: Any, dst: Any) -> None:
        raise OSError("hard links are not supported here")

    monkeypatch.setattr(folder_writes.os, "link", no_links)
    memory = _filled(tmp_path)
    memory.save(["ep1"])
    before = _snapshot(_reopen(tmp_path))
    memory.add("new", _note(3))
    _count_replaces(monkeypatch, fail_on=4)
    with pytest.raises(OSError, match="simulated crash"):
        memory.save(["ep2"])
    assert (tmp_path / "payloads.jsonl.prev").stat().st_nlink == 1
    assert _snapshot(_reopen(tmp_path)) == before
