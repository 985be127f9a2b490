"""Items and the catalogue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from billp.data import (
    Catalogue,
    DataError,
    Item,
    UnknownItemError,
    read_catalogue,
    write_atomic_file,
)


def _items() -> list[Item]:
    return [
        Item(
            item_id=0,
            raw_id="10",
            title="Toy Story",
            year=1995,
            genres=("Animation", "Children's", "Comedy"),
        ),
        Item(item_id=1, raw_id="20", title="Heat (1995)", year=1995, genres=("Action",)),
        Item(item_id=2, raw_id="30", title="Untitled", year=None, genres=()),
    ]


def test_label_and_text() -> None:
    toy, heat, untitled = _items()
    assert toy.label == "Toy Story (1995)"
    assert toy.text == "Toy Story (1995); genres: Animation, Children's, Comedy"
    assert heat.label == "Heat (1995)"  # the year is not repeated
    assert untitled.label == "Untitled"
    assert untitled.text == "Untitled; genres: none"


def test_lookups_and_genres() -> None:
    catalogue = Catalogue(_items())
    assert len(catalogue) == 3
    assert [item.item_id for item in catalogue] == [0, 1, 2]
    assert catalogue[np.int64(1)].title == "Heat (1995)"
    assert catalogue.id_of_raw("30") == 2
    assert catalogue.genres == ["Action", "Animation", "Children's", "Comedy"]
    assert catalogue.genre_sets[1] == frozenset({"Action"})
    assert catalogue.genre_matrix.shape == (3, 4)
    assert catalogue.genre_matrix[0].tolist() == [False, True, True, True]
    assert catalogue.items_with_genre("Comedy").tolist() == [0]
    assert catalogue.items_with_genre("Comedy").dtype == np.int64


def test_unknown_item_errors() -> None:
    catalogue = Catalogue(_items())
    with pytest.raises(UnknownItemError, match="item id 5000 is not in the catalogue of 3 items"):
        catalogue[5000]
    with pytest.raises(UnknownItemError, match="item id -1 is not in the catalogue"):
        catalogue[-1]
    with pytest.raises(KeyError):  # UnknownItemError is also a KeyError and a ValueError
        catalogue.id_of_raw("99")
    with pytest.raises(ValueError, match="raw item id '99'"):
        catalogue.id_of_raw("99")
    with pytest.raises(DataError, match="genre 'Western' is not in the catalogue"):
        catalogue.items_with_genre("Western")


def test_ids_must_be_dense_and_raw_ids_unique() -> None:
    toy, heat, _ = _items()
    with pytest.raises(DataError, match="position 1 holds item_id 5"):
        Catalogue([toy, heat.model_copy(update={"item_id": 5})])
    with pytest.raises(DataError, match="raw item id '10' appears twice"):
        Catalogue([toy, heat.model_copy(update={"raw_id": "10"})])


def test_fingerprint_changes_with_content() -> None:
    items = _items()
    same = Catalogue(_items()).fingerprint
    assert Catalogue(items).fingerprint == same
    changed = [*items[:2], items[2].model_copy(update={"genres": ("Drama",)})]
    assert Catalogue(changed).fingerprint != same
    assert len(same) == 64


def test_read_catalogue_accepts_other_column_names(tmp_path: Path) -> None:
    path = write_atomic_file(
        tmp_path / "books.item",
        ["item_id:token", "title:token_seq", "year:float", "categories:token_seq"],
        [["b1", "Dune", "1965.0", "SciFi Classic"], ["b2", "Emma", "", "Romance"]],
    )
    catalogue = read_catalogue(path)
    assert catalogue[0].year == 1965
    assert catalogue[1].year is None
    assert catalogue[0].genres == ("SciFi", "Classic")
    assert catalogue.id_of_raw("b2") == 1


def test_read_catalogue_without_year_column(tmp_path: Path) -> None:
    path = write_atomic_file(
        tmp_path / "x.item",
        ["item_id:token", "name:token_seq", "genre:token_seq"],
        [["1", "A", "Drama"]],
    )
    assert read_catalogue(path)[0].label == "A"


def test_missing_genre_column_names_file_and_choices(tmp_path: Path) -> None:
    path = write_atomic_file(
        tmp_path / "x.item", ["item_id:token", "movie_title:token_seq"], [["1", "A"]]
    )
    with pytest.raises(DataError, match=r"x\.item: no genre column; expected one of .*'class'"):
        read_catalogue(path)


def test_repeated_item_id_is_an_error(tmp_path: Path) -> None:
    path = write_atomic_file(
        tmp_path / "x.item",
        ["item_id:token", "title:token_seq", "class:token_seq"],
        [["1", "A", "Drama"], ["1", "B", "Drama"]],
    )
    with pytest.raises(DataError, match=r"x\.item: line 3 repeats item_id '1'"):
        read_catalogue(path)
