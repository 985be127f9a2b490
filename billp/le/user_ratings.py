"""The users' logged ratings that the LE may read (the train part of the data, never the held-out
part), and the item neighbourhoods fitted from them (:mod:`billp.le.neighbours`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from billp.data.dataset import Dataset
from billp.le.neighbours import ItemNeighbours, neighbours_from_ratings

KnownRatings = Mapping[int, Mapping[int, float]]
"""user -> item -> logged rating."""


def known_ratings(dataset: Dataset) -> KnownRatings:
    """Each user's train-part ratings (never the held-out ones): what the LE may read."""
    train = dataset.train_interactions
    table: dict[int, dict[int, float]] = {}
    for user, item, rating in zip(
        train.users.tolist(), train.items.tolist(), train.ratings.tolist(), strict=True
    ):
        table.setdefault(int(user), {})[int(item)] = float(rating)
    return table


def neighbours_from_known(
    known: KnownRatings, item_bias: np.ndarray, mean: float, n_items: int
) -> ItemNeighbours:
    """Item similarities from the known ratings (all users' logged train parts); ``item_bias``
    and ``mean``: the LE's item biases and mean rating (float64)."""
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    for user, table in known.items():
        users += [int(user)] * len(table)
        items += [int(i) for i in table]
        ratings += [float(r) for r in table.values()]
    return neighbours_from_ratings(
        np.asarray(users),
        np.asarray(items),
        np.asarray(ratings),
        item_bias,
        mean,
        n_items,
    )
