"""The Actor's shortlist holds only real, unseen catalogue items, in priority order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from billp.agents import item_index as item_index_module
from billp.agents.item_index import ItemIndex
from billp.agents.shortlist import ShortlistBuilder, exploration_genres
from billp.data import Catalogue
from billp.memory import HashEmbedder


def test_shortlist_excludes_seen_and_discouraged(builder: ShortlistBuilder) -> None:
    short = builder.build(size=6, recent=[0], exclude={0, 1}, discouraged={5})
    assert set(short.item_ids) == {2, 3, 4}
    assert len(short.item_ids) == len(set(short.item_ids))


def test_memory_then_plan_then_hints_then_similar(builder: ShortlistBuilder) -> None:
    short = builder.build(
        size=4,
        recent=[0],
        exclude={0},
        plan_genres=["Drama"],
        hint_genres=["Horror"],
        encouraged=[3],
    )
    assert short.item_ids[0] == 3 and short.sources[3] == "memory"
    plan_items = [i for i in short.item_ids if short.sources[i] == "plan"]
    assert plan_items and all("Drama" in builder.catalogue[i].genres for i in plan_items)
    assert short.sources.get(5) == "hint"
    assert len(short.item_ids) == 4


def test_unknown_plan_genres_are_ignored(builder: ShortlistBuilder) -> None:
    short = builder.build(size=3, recent=[], exclude=set(), plan_genres=["Not A Genre"])
    assert all(source == "similar" for source in short.sources.values())
    assert len(short.item_ids) == 3


def test_exploration_genres_avoid_the_recent_window(catalogue: Catalogue) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        hints = exploration_genres(catalogue, recent=[0, 1], count=2, rng=rng)
        assert len(hints) == 2
        assert not {"Action", "Comedy"} & set(hints)
        assert set(hints) <= set(catalogue.genres)


def test_exploration_when_every_genre_was_recent(catalogue: Catalogue) -> None:
    hints = exploration_genres(catalogue, list(range(6)), 2, np.random.default_rng(1))
    assert len(hints) == 2


def test_popularity_length_must_match(catalogue: Catalogue, item_index: ItemIndex) -> None:
    with pytest.raises(ValueError, match="popularity has 2 entries for 6"):
        ShortlistBuilder(catalogue, item_index, np.array([1, 2]))


def test_grounding_free_text(item_index: ItemIndex) -> None:
    assert item_index.ground("Casablanca (1982)") == 2
    assert item_index.ground("  casablanca ") == 2
    assert item_index.ground("Alien (1985)") == 5  # the year suffix is ignored
    # Not an exact title: the nearest title in embedding space (the hash embedder is fixed).
    assert item_index.ground("a movie about an alien") == 5
    assert item_index.ground("Rush Hour 2") == 3
    assert item_index.ground("Vertigo!") == 4
    # An excluded exact match falls back to the nearest item that is not excluded.
    assert item_index.ground("Casablanca", exclude={2}) == 5
    assert item_index.ground("Casablanca", exclude=set(range(6))) is None
    assert item_index.ground("   ") is None


def test_item_embeddings_are_cached(catalogue: Catalogue, tmp_path: Path) -> None:
    class Counting(HashEmbedder):
        calls = 0

        def embed(self, texts):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            return super().embed(texts)

    first = ItemIndex(catalogue, Counting(), cache_dir=tmp_path)
    calls = Counting.calls
    second = ItemIndex(catalogue, Counting(), cache_dir=tmp_path)
    assert Counting.calls == calls
    np.testing.assert_array_equal(first.vectors, second.vectors)


def test_item_embeddings_of_another_numeric_environment_are_not_read(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ItemIndex(catalogue, HashEmbedder(), cache_dir=tmp_path)
    monkeypatch.setattr(item_index_module, "numeric_fingerprint", lambda: "another machine")
    ItemIndex(catalogue, HashEmbedder(), cache_dir=tmp_path)
    assert len(list((tmp_path / "item_embeddings").glob("*.npy"))) == 2
