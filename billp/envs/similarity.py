"""Genre-set similarity used by the quit rule, and by the policies that keep clear of it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def genre_jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity ``|a & b| / |a | b|`` of two genre sets; two empty sets give 1.0."""
    union = len(a | b)
    if union == 0:
        return 1.0
    return len(a & b) / union


class GenreJaccard:
    """:func:`genre_jaccard` of every item with given items at once, from a genre matrix
    built once. A genre-less item gets a column of its own kind, so two genre-less items
    have similarity 1 and a genre-less and a genred item 0, exactly as
    :func:`genre_jaccard` says."""

    def __init__(self, genre_sets: Sequence[frozenset[str]]) -> None:
        names = sorted({g for s in genre_sets for g in s})
        column = {g: j for j, g in enumerate(names)}
        matrix = np.zeros((len(genre_sets), len(names) + 1), dtype=np.float64)
        for i, genres in enumerate(genre_sets):
            if genres:
                matrix[i, [column[g] for g in genres]] = 1.0
            else:
                matrix[i, -1] = 1.0
        self._matrix = matrix
        self._sizes = matrix.sum(axis=1)

    def to(self, items: Sequence[int]) -> np.ndarray:
        """Similarity of every item (rows) with each of ``items`` (columns)."""
        rows = list(items)
        inter = self._matrix @ self._matrix[rows].T
        union = self._sizes[:, None] + self._sizes[rows][None, :] - inter
        return inter / union
