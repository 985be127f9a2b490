"""The neighbourhood term of the LE's rating: the user's own residuals on similar items.

The LE's transformer sees the last ``context_items`` items of a history; the user's shrunk mean
residual (:func:`billp.le.model.history_offset`) summarises all of it in one number. This term
adds what lies between: for a candidate item, the damped similarity-weighted mean of the user's
rating residuals (rating - rating_mean - item_bias) over the ``NEIGHBOURS`` rated history items
most similar to it (item-based collaborative filtering on residuals, as in Koren's neighbourhood
models). Similarities are cosines between items' residual columns over the train part of the
logs, shrunk by how many users rated both. The calibration (:func:`billp.le.calibration.
fit_linear`) weighs the term against the LE's own prediction on held-out ratings of train users.

The three constants were chosen on train users only, with the LE-2 checkpoint of 2026-12-01:
the calibration was fitted on 400 train users' held-out ratings and scored on the other 354
(grid: shrinkage 10/25/50/100 x neighbours 10/20/40/all x damping 0.1/0.5/1/2). The chosen point
took that RMSE from 0.999 to 0.982 and Spearman from 0.549 to 0.570; neighbours 10 won at every
shrinkage, and the spread over shrinkage and damping was under 0.003.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

NEIGHBOURS = 10
"""Most similar rated history items a candidate's term averages over."""
SIMILARITY_SHRINKAGE = 10.0
"""Pseudo-count of co-raters: a cosine from n co-raters is scaled by n / (n + this)."""
NEIGHBOUR_DAMPING = 2.0
"""Pseudo-weight in the denominator pulling the term towards 0 when neighbours are weak."""


@dataclass(frozen=True)
class ItemNeighbours:
    """Shrunk residual cosines between items (``[n_items, n_items]`` float32, zero diagonal,
    negative values set to 0)."""

    similarity: np.ndarray

    def residuals(
        self, candidates: Sequence[int] | np.ndarray, rated: np.ndarray, residuals: np.ndarray
    ) -> np.ndarray:
        """The term (float64 ``[C]``) of each candidate given the user's ``rated`` history items
        and their rating ``residuals``; 0 for a user with no rated item."""
        cand = np.asarray(candidates, dtype=np.int64)
        items = np.asarray(rated, dtype=np.int64)
        values = np.asarray(residuals, dtype=np.float64)
        if items.size == 0 or cand.size == 0:
            return np.zeros(cand.size, dtype=np.float64)
        weights = self.similarity[np.ix_(cand, items)].astype(np.float64)
        chosen = np.broadcast_to(values, weights.shape)
        if items.size > NEIGHBOURS:
            top = np.argpartition(-weights, NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS]
            weights = np.take_along_axis(weights, top, axis=1)
            chosen = values[top]
        return (weights * chosen).sum(axis=1) / (weights.sum(axis=1) + NEIGHBOUR_DAMPING)


def fit_item_neighbours(
    users: np.ndarray, items: np.ndarray, residuals: np.ndarray, n_items: int
) -> ItemNeighbours:
    """Similarities from logged rating ``residuals`` of (``users``, ``items``) pairs."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    values = np.asarray(residuals, dtype=np.float64)
    n_users = int(users.max()) + 1 if users.size else 1
    shape = (n_users, n_items)
    matrix = sp.csr_matrix((values, (users, items)), shape=shape)
    rated = sp.csr_matrix((np.ones_like(values), (users, items)), shape=shape)
    dot = (matrix.T @ matrix).toarray()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0))).reshape(-1)
    corated = (rated.T @ rated).toarray()
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(np.outer(norms, norms) > 0, dot / np.outer(norms, norms), 0.0)
    similarity = np.maximum(cosine * corated / (corated + SIMILARITY_SHRINKAGE), 0.0)
    np.fill_diagonal(similarity, 0.0)
    return ItemNeighbours(similarity=similarity.astype(np.float32))


def neighbours_from_ratings(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    item_bias: np.ndarray,
    mean: float,
    n_items: int,
) -> ItemNeighbours:
    """:func:`fit_item_neighbours` on the residuals ``rating - mean - item_bias[item]`` of
    logged (``users``, ``items``, ``ratings``), the residuals the term itself averages."""
    item_ids = np.asarray(items, dtype=np.int64)
    residuals = np.asarray(ratings, dtype=np.float64) - mean - item_bias[item_ids]
    return fit_item_neighbours(np.asarray(users, dtype=np.int64), item_ids, residuals, n_items)


def history_residuals(
    items: Sequence[int] | np.ndarray,
    ratings: Sequence[float] | np.ndarray,
    item_bias: np.ndarray,
    mean: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The rated items of a history and their residuals (NaN ratings, unknown, are skipped)."""
    item_ids = np.asarray(items, dtype=np.int64)
    values = np.asarray(ratings, dtype=np.float64)
    known = ~np.isnan(values)
    rated = item_ids[known]
    return rated, values[known] - mean - item_bias[rated]


def logged_residuals(
    neighbours: ItemNeighbours,
    sequences: Sequence[Sequence[int]],
    ratings: Sequence[np.ndarray],
    targets: Sequence[Sequence[int]],
    item_bias: np.ndarray,
    mean: float,
) -> list[np.ndarray]:
    """The term of ``sequences[u][t]`` after the rated items of ``sequences[u][:t]``, for every
    ``t`` in ``targets[u]`` (the logged-data counterpart of :meth:`ItemNeighbours.residuals`)."""
    out = []
    for sequence, known, wanted in zip(sequences, ratings, targets, strict=True):
        values = np.zeros(len(wanted), dtype=np.float64)
        for k, t in enumerate(wanted):
            rated, residual = history_residuals(sequence[:t], known[:t], item_bias, mean)
            values[k] = neighbours.residuals([sequence[t]], rated, residual)[0]
        out.append(values)
    return out
