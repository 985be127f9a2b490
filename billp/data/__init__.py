"""Datasets in RecBole atomic format: catalogue, interactions, user split, start histories."""

from __future__ import annotations

from billp.data.catalogue import Catalogue, Item, read_catalogue
from billp.data.dataset import Dataset, Interactions, load_dataset, split_users
from billp.data.errors import DataError, UnknownItemError, UnknownUserError
from billp.data.movielens import movielens_100k_dir
from billp.data.recbole_files import read_atomic_file
from billp.data.synthetic import write_atomic_file, write_toy_dataset

__all__ = [
    "Catalogue",
    "DataError",
    "Dataset",
    "Interactions",
    "Item",
    "UnknownItemError",
    "UnknownUserError",
    "load_dataset",
    "movielens_100k_dir",
    "read_atomic_file",
    "read_catalogue",
    "split_users",
    "write_atomic_file",
    "write_toy_dataset",
]
