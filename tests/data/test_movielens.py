"""Locating MovieLens-100K inside the recbole package."""

from __future__ import annotations

import importlib.util

import pytest

from billp.data import DataError, movielens_100k_dir
from billp.data import movielens as movielens_module


def test_folder_holds_the_atomic_files() -> None:
    folder = movielens_100k_dir()
    assert folder.name == "ml-100k"
    assert (folder / "ml-100k.inter").is_file()
    assert (folder / "ml-100k.item").is_file()


def test_missing_recbole_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps recbole==1\.2\.1"):
        movielens_module.movielens_100k_dir()
