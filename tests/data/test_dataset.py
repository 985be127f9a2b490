"""Loading datasets, the user split and starting histories."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from billp.config import DataConfig
from billp.data import (
    DataError,
    Dataset,
    UnknownUserError,
    load_dataset,
    split_users,
    write_atomic_file,
    write_toy_dataset,
)

INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
ITEM_HEADER = ["item_id:token", "movie_title:token_seq", "release_year:token", "class:token_seq"]


@pytest.fixture(scope="module")
def ml100k() -> Dataset:
    return load_dataset(DataConfig())


def _write_items(folder: Path, name: str = "tiny", n: int = 4) -> None:
    rows = [
        [i, f"Film {i}", 2000 + i, "Drama" if i % 2 else "Comedy Drama"] for i in range(1, n + 1)
    ]
    write_atomic_file(folder / f"{name}.item", ITEM_HEADER, rows)


def test_movielens_100k_counts(ml100k: Dataset) -> None:
    assert ml100k.name == "ml-100k"
    assert len(ml100k.catalogue) == 1682
    assert ml100k.n_users == 943
    assert len(ml100k.interactions) == 100_000
    assert len(ml100k.train_interactions) + len(ml100k.heldout_interactions) == 100_000
    assert ml100k.catalogue[0].label == "Toy Story (1995)"
    assert ml100k.user_raw_ids[0] == "1"
    assert ml100k.item_popularity.sum() == len(ml100k.train_interactions)
    assert ml100k.interactions.ratings.dtype == np.float32
    assert ml100k.interactions.users.dtype == np.int64


def test_interactions_are_sorted_by_user_then_time(ml100k: Dataset) -> None:
    inter = ml100k.interactions
    assert np.all(np.diff(inter.users) >= 0)
    same_user = np.diff(inter.users) == 0
    assert np.all(np.diff(inter.timestamps)[same_user] >= 0)


def test_train_part_is_each_users_earliest_share(ml100k: Dataset) -> None:
    for user in (0, 17, 942):
        log = ml100k.user_log(user)
        full = ml100k.interactions.take(ml100k.interactions.users == user)
        heldout = ml100k.heldout_interactions.take(ml100k.heldout_interactions.users == user)
        assert len(log) + len(heldout) == len(full)
        assert len(heldout) == int(0.2 * len(full))
        assert np.all(log.users == user)
        if len(heldout):
            assert log.timestamps.max() <= heldout.timestamps.min()


def test_split_is_seeded_and_disjoint(ml100k: Dataset) -> None:
    split = ml100k.split
    assert not set(split.train_users) & set(split.test_users)
    assert sorted(split.train_users + split.test_users) == list(range(943))
    assert len(split.test_users) == round(0.2 * 943)
    assert split_users(943, 0.2, 233) == split
    assert split_users(943, 0.2, 234) != split


def test_starting_histories(ml100k: Dataset) -> None:
    for user in (0, 5, 500):
        history = ml100k.starting_history(user)
        assert len(history) == 10
        assert history == ml100k.user_log(user).items[-10:].tolist()
        assert all(isinstance(item, int) for item in history)
    with pytest.raises(UnknownUserError, match="user id 943 is not in dataset 'ml-100k'"):
        ml100k.starting_history(943)


def test_synthetic_dataset_round_trip(tmp_path: Path) -> None:
    folder = write_toy_dataset(tmp_path / "toy", n_users=6, n_items=20, per_user=12)
    dataset = load_dataset(DataConfig(path=folder, history_length=4, test_user_fraction=0.5))
    assert dataset.name == "toy"
    assert (dataset.n_users, len(dataset.catalogue), len(dataset.interactions)) == (6, 20, 72)
    assert len(dataset.split.test_users) == 3
    assert all(len(dataset.starting_history(u)) == 4 for u in range(6))
    assert dataset.user_raw_ids == [str(u) for u in range(1, 7)]
    assert set(dataset.interactions.ratings.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_train_part_keeps_at_least_history_length(tmp_path: Path) -> None:
    _write_items(tmp_path)
    rows = [[1, 1 + step % 4, 4, step] for step in range(6)] + [[2, 1, 3, 0], [2, 2, 3, 1]]
    write_atomic_file(tmp_path / "tiny.inter", INTER_HEADER, rows)
    config = DataConfig(
        path=tmp_path, name="tiny", history_length=5, min_user_interactions=2, holdout_fraction=0.5
    )
    dataset = load_dataset(config)
    assert len(dataset.user_log(0)) == 5  # 50% would be 3, but H = 5 are kept
    assert len(dataset.user_log(1)) == 2  # all of a short log; nothing held out
    assert dataset.starting_history(1) == [0, 1]


def test_unknown_items_and_small_users_are_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_items(tmp_path)
    rows = [[7, i, 5, i] for i in (1, 2, 3, 99, 98)] + [[3, 1, 2, 0], [3, 2, 2, 1], [3, 4, 1, 2]]
    rows += [[5, 1, 1, 0], [5, 99, 1, 1]]  # user 5 keeps only one known item
    write_atomic_file(tmp_path / "tiny.inter", INTER_HEADER, rows)
    with caplog.at_level(logging.INFO):
        dataset = load_dataset(DataConfig(path=tmp_path, name="tiny", min_user_interactions=3))
    assert "dropped 3 of 10 interactions" in caplog.text
    assert "2 distinct item ids" in caplog.text
    assert dataset.user_raw_ids == ["3", "7"]  # numeric order; user 5 dropped
    assert dataset.user_log(1).items.tolist() == [0, 1, 2]


def test_ratings_and_timestamps_are_optional(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_items(tmp_path)
    rows = [[1, 3], [1, 1], [1, 2], [2, 4], [2, 1]]
    write_atomic_file(tmp_path / "tiny.inter", ["user_id:token", "item_id:token"], rows)
    dataset = load_dataset(DataConfig(path=tmp_path, name="tiny", min_user_interactions=2))
    assert dataset.interactions.ratings.tolist() == [1.0] * 5
    assert dataset.interactions.items.tolist() == [2, 0, 1, 3, 0]  # file order
    assert "no rating column" in caplog.text
    assert "no timestamp column" in caplog.text


def test_missing_file_lists_what_is_there(tmp_path: Path) -> None:
    _write_items(tmp_path, name="other")
    with pytest.raises(DataError, match=r"not found: .*tiny\.inter .*other\.item"):
        load_dataset(DataConfig(path=tmp_path, name="tiny"))
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(DataConfig(path=tmp_path / "absent"))


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    _write_items(tmp_path)
    write_atomic_file(tmp_path / "tiny.inter", ["user_id:token", "rating:float"], [[1, 5]])
    with pytest.raises(DataError, match=r"tiny\.inter: required column\(s\) \['item_id'\]"):
        load_dataset(DataConfig(path=tmp_path, name="tiny"))


def test_bad_rating_names_line_and_column(tmp_path: Path) -> None:
    _write_items(tmp_path)
    write_atomic_file(tmp_path / "tiny.inter", INTER_HEADER, [[1, 1, 4, 0], [1, 2, "good", 1]])
    with pytest.raises(DataError, match=r"tiny\.inter: line 3, column 'rating'.*'good'"):
        load_dataset(DataConfig(path=tmp_path, name="tiny"))


def test_fingerprint_tracks_files_and_config(tmp_path: Path) -> None:
    folder = write_toy_dataset(tmp_path / "toy")
    base = load_dataset(DataConfig(path=folder)).fingerprint
    assert load_dataset(DataConfig(path=folder)).fingerprint == base
    assert load_dataset(DataConfig(path=folder, history_length=3)).fingerprint != base
    write_toy_dataset(folder, seed=1)
    assert load_dataset(DataConfig(path=folder)).fingerprint != base
