"""Reading RecBole atomic files."""

from __future__ import annotations

from pathlib import Path

import pytest

from billp.data import DataError, read_atomic_file, write_atomic_file


def test_columns_are_keyed_by_bare_name(tmp_path: Path) -> None:
    path = write_atomic_file(
        tmp_path / "x.item",
        ["item_id:token", "movie_title:token_seq", "class:token_seq"],
        [[1, "Toy Story", "Animation Comedy"], [2, 'The "Quoted" One', "Drama"]],
    )
    columns = read_atomic_file(path, required=["item_id"])
    assert columns == {
        "item_id": ["1", "2"],
        "movie_title": ["Toy Story", 'The "Quoted" One'],
        "class": ["Animation Comedy", "Drama"],
    }


def test_short_rows_are_padded_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "x.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\n1\t2\n\n3\t4\t5\n", "utf-8")
    columns = read_atomic_file(path, required=["user_id", "item_id"])
    assert columns["rating"] == ["", "5"]
    assert columns["user_id"] == ["1", "3"]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.inter"
    with pytest.raises(DataError, match=r"not found: .*nope\.inter"):
        read_atomic_file(path, required=["user_id"])


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_atomic_file(tmp_path / "x.inter", ["user_id:token", "rating:float"], [[1, 3]])
    with pytest.raises(DataError, match=r"x\.inter.*'item_id'") as excinfo:
        read_atomic_file(path, required=["user_id", "item_id"])
    assert "user_id" in str(excinfo.value)  # the header is shown


def test_too_many_fields_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.inter"
    path.write_text("user_id:token\titem_id:token\n1\t2\n1\t2\t3\n", "utf-8")
    with pytest.raises(DataError, match=r"x\.inter: line 3 has 3"):
        read_atomic_file(path, required=["user_id"])


def test_bad_header_type_and_duplicates(tmp_path: Path) -> None:
    bad_type = write_atomic_file(tmp_path / "a.inter", ["user_id:tokn"], [[1]])
    with pytest.raises(DataError, match=r"'tokn'"):
        read_atomic_file(bad_type, required=[])
    duplicate = write_atomic_file(tmp_path / "b.inter", ["user_id:token", "user_id:float"], [])
    with pytest.raises(DataError, match=r"'user_id' appears twice"):
        read_atomic_file(duplicate, required=[])


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.inter"
    path.write_text("", "utf-8")
    with pytest.raises(DataError, match="empty"):
        read_atomic_file(path, required=[])


def test_latin1_file_is_read_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.item"
    path.write_bytes("item_id:token\ttitle:token_seq\n1\tAmélie\n".encode("latin-1"))
    columns = read_atomic_file(path, required=["title"])
    assert columns["title"] == ["Amélie"]
    assert "not valid utf-8" in caplog.text
