"""Shared fixtures for agent tests: a toy catalogue with a hash-embedded item index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from billp.agents.item_index import ItemIndex
from billp.agents.shortlist import ShortlistBuilder
from billp.config import DataConfig
from billp.data import Catalogue, Dataset, Item, load_dataset, write_toy_dataset
from billp.memory import HashEmbedder


@pytest.fixture()
def catalogue() -> Catalogue:
    genres = [("Action",), ("Comedy",), ("Drama",), ("Action", "Comedy"), ("Drama",), ("Horror",)]
    titles = ["Heat", "Airplane!", "Casablanca", "Rush Hour", "Vertigo", "Alien"]
    return Catalogue(
        [
            Item(item_id=i, raw_id=str(i + 1), title=t, year=1980 + i, genres=g)
            for i, (t, g) in enumerate(zip(titles, genres, strict=True))
        ]
    )


@pytest.fixture()
def item_index(catalogue: Catalogue, tmp_path: Path) -> ItemIndex:
    return ItemIndex(catalogue, HashEmbedder(), cache_dir=tmp_path)


@pytest.fixture()
def builder(catalogue: Catalogue, item_index: ItemIndex) -> ShortlistBuilder:
    popularity = np.array([50, 10, 40, 5, 1, 30])
    return ShortlistBuilder(catalogue, item_index, popularity)


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    folder = write_toy_dataset(tmp_path_factory.mktemp("toy") / "toy", n_users=16, n_items=40)
    return load_dataset(DataConfig(path=folder, history_length=5, min_user_interactions=5))
