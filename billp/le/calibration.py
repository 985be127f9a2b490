"""Map the LE's predicted ratings (or, in old checkpoints, raw scores) onto the 1..5 scale.

Since format ``billp-le-2`` the LE predicts ratings itself (a rating head trained on explicit
ratings) and the calibration is a least-squares line (:func:`fit_linear`) of held-out ratings of
train users on the prediction, extended beyond its knots: it corrects the shift between the
training targets and later ratings without clipping the ends of the scale. The isotonic map
below was the calibration of ``billp-le-1``, whose reward was the pairwise score psi: it never
left the observed block means, so its rewards spanned only [3.00, 4.67].

Isotonic regression (pool-adjacent-violators) of held-out explicit ratings on psi, read as a
piecewise-linear curve through the fitted blocks (mean psi, mean rating) and flat beyond them.

Why isotonic and not Platt-style: psi is trained pairwise, so only its order carries meaning.
An isotonic map keeps that order (the ranking metrics stay those of psi), assumes no shape for
the link between psi and ratings, never leaves the observed rating range, and its blocks are the
least-squares monotone fit, i.e. they minimise the rating error the fidelity report measures.
A sigmoid (Platt) fits the probability of a binary label, and a linear map would extrapolate the
many low-psi items users never rated far below the scale. Interpolating between block centres
instead of reading the blocks as steps keeps nearby scores apart (fewer tied rewards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from billp.le.errors import LEError

MIN_CALIBRATION_POINTS = 2


@dataclass(frozen=True)
class Calibration:
    """Knots of the monotone map psi -> rating (``x`` strictly increasing)."""

    x: np.ndarray
    y: np.ndarray
    extrapolate: bool = False
    """Continue the first and last segments' lines beyond the knots (False: flat ends)."""
    neighbour_weight: float = 0.0
    """Weight of the neighbourhood term (:mod:`billp.le.neighbours`) added to the mapped
    prediction (0: none, as in checkpoints before it existed)."""

    def __post_init__(self) -> None:
        if self.x.ndim != 1 or self.x.shape != self.y.shape or self.x.size == 0:
            raise LEError(
                f"calibration knots need equal 1-D shapes, got {self.x.shape} and {self.y.shape}"
            )
        if not (np.isfinite(self.x).all() and np.isfinite(self.y).all()):
            raise LEError("calibration knots hold NaN or infinite values")
        if self.x.size > 1 and not (np.diff(self.x) > 0).all():
            raise LEError("calibration knots x must be strictly increasing")
        if self.x.size > 1 and not (np.diff(self.y) >= 0).all():
            raise LEError("calibration knots y must be non-decreasing")
        if not np.isfinite(self.neighbour_weight):
            raise LEError("the calibration's neighbour weight is NaN or infinite")

    @property
    def uses_neighbours(self) -> bool:
        """Whether the neighbourhood term enters the rating."""
        return self.neighbour_weight != 0.0

    def __call__(self, scores: np.ndarray, neighbour: np.ndarray | None = None) -> np.ndarray:
        """Calibrated ratings (float32) of raw scores, plus the weighted neighbourhood term
        ``neighbour`` (same shape; None: 0)."""
        x = np.asarray(scores, dtype=np.float64)
        values = np.interp(x, self.x, self.y)
        if self.extrapolate and self.x.size > 1:
            low = (self.y[1] - self.y[0]) / (self.x[1] - self.x[0])
            high = (self.y[-1] - self.y[-2]) / (self.x[-1] - self.x[-2])
            values = np.where(x < self.x[0], self.y[0] + low * (x - self.x[0]), values)
            values = np.where(x > self.x[-1], self.y[-1] + high * (x - self.x[-1]), values)
        if neighbour is not None and self.uses_neighbours:
            values = values + self.neighbour_weight * np.asarray(neighbour, dtype=np.float64)
        return values.astype(np.float32)


def _checked(scores: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(ratings, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise LEError(f"{x.size} scores but {y.size} ratings for the calibration")
    if x.size < MIN_CALIBRATION_POINTS:
        raise LEError(
            f"the calibration needs at least {MIN_CALIBRATION_POINTS} held-out ratings, "
            f"got {x.size}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise LEError("calibration scores or ratings hold NaN or infinite values")
    return x, y


def fit_linear(
    predictions: np.ndarray, ratings: np.ndarray, neighbour: np.ndarray | None = None
) -> Calibration:
    """Least-squares ``rating ~ a * prediction + w * neighbour + b`` (a >= 0; without
    ``neighbour``, w = 0), the line in the prediction extended beyond its knots.

    Raises:
        LEError: fewer than two points, mismatched lengths, non-finite values, or all
            predictions equal.
    """
    x, y = _checked(predictions, ratings)
    if float(np.ptp(x)) == 0.0:
        raise LEError("the linear calibration needs predictions that are not all equal")
    n = np.zeros_like(x)
    if neighbour is not None:
        n, _ = _checked(neighbour, y)
    ones = np.ones_like(x)
    slope, weight, intercept = np.linalg.lstsq(np.column_stack([x, n, ones]), y, rcond=None)[0]
    if slope < 0.0:
        slope = 0.0
        weight, intercept = np.linalg.lstsq(np.column_stack([n, ones]), y, rcond=None)[0]
    knots = np.asarray([x.min(), x.max()])
    return Calibration(
        x=knots,
        y=float(slope) * knots + float(intercept),
        extrapolate=True,
        neighbour_weight=float(weight),
    )


def fit_isotonic(scores: np.ndarray, ratings: np.ndarray) -> Calibration:
    """Least-squares non-decreasing fit of ``ratings`` on ``scores`` (scipy's PAV).

    Each block of pooled scores becomes one knot: its mean score and its fitted rating.

    Raises:
        LEError: fewer than two points, mismatched lengths or non-finite values.
    """
    x, y = _checked(scores, ratings)
    # Tied scores form one group first, so the knots' x values come out strictly increasing.
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    means = np.bincount(inverse.reshape(-1), weights=y, minlength=values.size) / counts
    fitted = isotonic_regression(means, weights=counts.astype(np.float64), increasing=True).x
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0.0])
    sizes = np.add.reduceat(counts, starts).astype(np.float64)
    knots_x = np.add.reduceat(values * counts, starts) / sizes
    return Calibration(x=knots_x, y=np.asarray(fitted[starts], dtype=np.float64))
