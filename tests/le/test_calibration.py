"""Calibrations onto the rating scale: isotonic (LE-1) and linear, extrapolating (LE-2)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from billp.le.calibration import Calibration, fit_isotonic, fit_linear
from billp.le.errors import LEError


def test_fit_is_monotone_and_inside_the_rating_range() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=300)
    ratings = np.clip(np.round(3 + scores + rng.normal(scale=1.0, size=300)), 1, 5)
    calibration = fit_isotonic(scores, ratings)
    grid = np.linspace(-5, 5, 200)
    mapped = calibration(grid)
    assert (np.diff(mapped) >= 0).all()
    assert mapped.min() >= ratings.min() and mapped.max() <= ratings.max()
    assert (np.diff(calibration.x) > 0).all()


def test_knots_are_the_least_squares_monotone_blocks() -> None:
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    ratings = np.array([3.0, 1.0, 4.0, 2.0, 5.0])
    calibration = fit_isotonic(scores, ratings)
    # PAV pools (3, 1) and (4, 2): block means 2, 3, 5 at score means 0.5, 2.5, 4.
    np.testing.assert_allclose(calibration.x, [0.5, 2.5, 4.0])
    np.testing.assert_allclose(calibration.y, [2.0, 3.0, 5.0])
    blocks = np.repeat(calibration.y, [2, 2, 1])
    best = np.inf
    for candidate in itertools.product(np.arange(1.0, 5.01, 0.5), repeat=5):
        values = np.asarray(candidate)
        if (np.diff(values) >= 0).all():
            best = min(best, float(((values - ratings) ** 2).sum()))
    assert float(((blocks - ratings) ** 2).sum()) <= best + 1e-9
    # Between knots the map interpolates linearly.
    assert calibration(np.array([1.5]))[0] == pytest.approx(2.5)


def test_tied_scores_share_one_value_and_ends_are_flat() -> None:
    calibration = fit_isotonic(np.array([1.0, 1.0, 2.0, 3.0]), np.array([2.0, 4.0, 4.0, 5.0]))
    assert calibration(np.array([1.0]))[0] == pytest.approx(3.0)
    assert calibration(np.array([-100.0]))[0] == pytest.approx(3.0)
    assert calibration(np.array([100.0]))[0] == pytest.approx(5.0)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(LEError, match="at least 2"):
        fit_isotonic(np.array([1.0]), np.array([3.0]))
    with pytest.raises(LEError, match="3 scores but 2 ratings"):
        fit_isotonic(np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0]))
    with pytest.raises(LEError, match="NaN"):
        fit_isotonic(np.array([1.0, np.nan]), np.array([3.0, 4.0]))
    with pytest.raises(LEError, match="strictly increasing"):
        Calibration(x=np.array([1.0, 1.0]), y=np.array([2.0, 3.0]))
    with pytest.raises(LEError, match="non-decreasing"):
        Calibration(x=np.array([1.0, 2.0]), y=np.array([3.0, 2.0]))


def test_linear_fit_extends_beyond_its_knots() -> None:
    """The LE-2 calibration: a least-squares line that does not clip at the observed ends."""
    rng = np.random.default_rng(1)
    predictions = rng.uniform(2.0, 4.5, size=400)
    ratings = 0.5 + 0.9 * predictions + rng.normal(scale=0.1, size=400)
    calibration = fit_linear(predictions, ratings)
    assert calibration.extrapolate
    np.testing.assert_allclose(calibration.x, [predictions.min(), predictions.max()])
    slope = (calibration.y[1] - calibration.y[0]) / (calibration.x[1] - calibration.x[0])
    assert slope == pytest.approx(0.9, abs=0.03)
    # Beyond the knots the line goes on (an isotonic map would stay flat).
    low, high = calibration(np.array([0.0, 6.0]))
    assert low == pytest.approx(calibration.y[0] - slope * calibration.x[0], abs=1e-5)
    assert high == pytest.approx(calibration.y[1] + slope * (6.0 - calibration.x[1]), abs=1e-5)
    assert low < ratings.min() and high > ratings.max()


def test_linear_fit_never_reverses_the_order() -> None:
    predictions = np.array([1.0, 2.0, 3.0, 4.0])
    calibration = fit_linear(predictions, np.array([4.0, 3.0, 2.0, 1.0]))
    np.testing.assert_allclose(calibration.y, [2.5, 2.5])
    with pytest.raises(LEError, match="not all equal"):
        fit_linear(np.ones(5), np.arange(5.0))


def test_linear_fit_weighs_the_neighbourhood_term() -> None:
    rng = np.random.default_rng(2)
    predictions = rng.uniform(2.0, 4.5, size=500)
    neighbour = rng.normal(scale=0.5, size=500)
    ratings = 0.3 + 0.8 * predictions + 1.2 * neighbour + rng.normal(scale=0.05, size=500)
    calibration = fit_linear(predictions, ratings, neighbour)
    assert calibration.uses_neighbours
    assert calibration.neighbour_weight == pytest.approx(1.2, abs=0.03)
    with_term = calibration(predictions, neighbour)
    np.testing.assert_allclose(with_term, ratings, atol=0.25)
    # Without the term's values the calibration is the line alone.
    np.testing.assert_allclose(
        calibration(predictions) + calibration.neighbour_weight * neighbour, with_term, atol=1e-4
    )
    assert not fit_linear(predictions, ratings).uses_neighbours
    with pytest.raises(LEError, match="NaN or infinite"):
        Calibration(x=np.array([1.0]), y=np.array([2.0]), neighbour_weight=float("nan"))
