"""The neighbourhood term: residuals of the user's rated items most similar to a candidate."""

from __future__ import annotations

import numpy as np
import pytest

from billp.le.neighbours import (
    NEIGHBOUR_DAMPING,
    NEIGHBOURS,
    SIMILARITY_SHRINKAGE,
    ItemNeighbours,
    fit_item_neighbours,
    history_residuals,
    logged_residuals,
)


def _twins() -> ItemNeighbours:
    """Items 0 and 1 get the same residuals from every user, item 2 the opposite ones."""
    users = np.repeat(np.arange(6), 3)
    items = np.tile([0, 1, 2], 6)
    signs = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    residuals = np.stack([signs, signs, -signs], axis=1).reshape(-1)
    return fit_item_neighbours(users, items, residuals, n_items=4)


def test_similarity_is_a_shrunk_cosine_without_self_or_negative_links() -> None:
    similarity = _twins().similarity
    assert similarity.dtype == np.float32
    assert similarity[0, 1] == pytest.approx(6 / (6 + SIMILARITY_SHRINKAGE))
    assert similarity[0, 2] == 0.0  # cosine -1, clipped
    np.testing.assert_array_equal(np.diag(similarity), 0.0)
    np.testing.assert_array_equal(similarity[3], 0.0)  # never rated


def test_term_is_the_damped_weighted_mean_of_similar_items_residuals() -> None:
    neighbours = _twins()
    weight = 6 / (6 + SIMILARITY_SHRINKAGE)
    term = neighbours.residuals([0, 2, 3], np.array([1, 2]), np.array([0.8, -0.5]))
    # Item 0 leans on its twin 1 only; 2 and 3 have no positive neighbour.
    np.testing.assert_allclose(term, [weight * 0.8 / (weight + NEIGHBOUR_DAMPING), 0.0, 0.0])
    np.testing.assert_array_equal(neighbours.residuals([0], np.array([]), np.array([])), [0.0])


def test_only_the_most_similar_neighbours_count() -> None:
    n = NEIGHBOURS + 5
    similarity = np.zeros((n + 1, n + 1), dtype=np.float32)
    similarity[0, 1:] = np.linspace(1.0, 0.1, n)
    rated = np.arange(1, n + 1)
    residuals = np.where(rated <= NEIGHBOURS, 1.0, -100.0)
    term = ItemNeighbours(similarity).residuals([0], rated, residuals)[0]
    top = similarity[0, 1 : NEIGHBOURS + 1].astype(np.float64)
    assert term == pytest.approx(top.sum() / (top.sum() + NEIGHBOUR_DAMPING))


def test_logged_terms_read_only_the_rated_items_before_each_target() -> None:
    neighbours = _twins()
    bias = np.array([0.1, -0.2, 0.0, 0.0])
    rated, residual = history_residuals([1, 2, 3], [4.0, np.nan, 3.0], bias, 3.5)
    np.testing.assert_array_equal(rated, [1, 3])
    np.testing.assert_allclose(residual, [0.7, -0.5])
    sequence = [1, 0, 2]
    known = np.array([4.0, 5.0, np.nan])
    (terms,) = logged_residuals(neighbours, [sequence], [known], [[1, 2]], bias, 3.5)
    expected = [
        neighbours.residuals([0], *history_residuals([1], [4.0], bias, 3.5))[0],
        neighbours.residuals([2], *history_residuals([1, 0], [4.0, 5.0], bias, 3.5))[0],
    ]
    np.testing.assert_allclose(terms, expected)
