"""The episode metrics ``summary.json`` and ``python -m billp.evaluation`` share, each defined
once, as a weighted statistic:

- **Len**: accepted recommendations per episode (the record's ``length``: the step on which
  the user quits is not accepted; an episode cut by the step cap accepts every step);
- **R_traj**: the summed reward of accepted steps (the record's ``total_reward``);
- **R_each**: reward per accepted step over all episodes, ``sum(R_traj) / sum(Len)`` (so that
  ``R_each = R_traj / Len`` on the means, as in BiLLP's tables);
- **coverage**: distinct items recommended in all episodes (quitting steps included) over
  the catalogue size;
- **quit share / capped share**: episodes ended by the user quitting / by the step cap.

A weighted statistic maps weights ``[B, n]`` (a row per resample of the n episodes) to a value
per row. ``summary.json`` evaluates it on one row of ones (the point estimate); the evaluation
on bootstrap rows (its intervals, :mod:`billp.evaluation.bootstrap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

WeightedStatistic = Callable[[np.ndarray], np.ndarray]
"""Maps weights ``[B, n]`` (one row per resample) to the statistic of each row ``[B]``."""


class Episode(Protocol):
    """What the metrics read of an episode (:class:`billp.records.models.EpisodeRecord`)."""

    @property
    def phase(self) -> str: ...
    @property
    def items(self) -> Sequence[int]: ...
    @property
    def length(self) -> int: ...
    @property
    def total_reward(self) -> float: ...
    @property
    def terminated(self) -> bool: ...
    @property
    def capped(self) -> bool: ...
    @property
    def fallbacks(self) -> int: ...


def episode_values(episodes: Sequence[Episode]) -> dict[str, np.ndarray]:
    """Each episode's Len, R_traj, and whether it ended by a quit or by the cap (1.0 or 0.0)."""
    return {
        "len": np.array([ep.length for ep in episodes], dtype=np.float64),
        "r_traj": np.array([ep.total_reward for ep in episodes], dtype=np.float64),
        "quit_share": np.array([ep.terminated for ep in episodes], dtype=np.float64),
        "capped_share": np.array([ep.capped for ep in episodes], dtype=np.float64),
    }


def weighted_mean(values: np.ndarray) -> WeightedStatistic:
    """Weighted mean of a per-episode value, leaving out episodes where it is ``nan``
    (``nan`` when none is left)."""
    valid = np.isfinite(values).astype(np.float64)
    filled = np.where(valid > 0, values, 0.0)

    def statistic(weights: np.ndarray) -> np.ndarray:
        num = weights @ filled
        den = weights @ valid
        return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)

    return statistic


def reward_per_step(length: np.ndarray, r_traj: np.ndarray) -> WeightedStatistic:
    """R_each: ``sum(R_traj) / sum(Len)`` under weights; ``nan`` when no step was accepted."""

    def statistic(weights: np.ndarray) -> np.ndarray:
        num = weights @ r_traj
        den = weights @ length
        return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)

    return statistic


def item_incidence(episodes: Sequence[Episode]) -> np.ndarray:
    """``[n_episodes, distinct items]``: 1.0 where the episode recommended the item."""
    distinct = sorted({i for ep in episodes for i in ep.items})
    column = {item: j for j, item in enumerate(distinct)}
    incidence = np.zeros((len(episodes), len(distinct)), dtype=np.float64)
    for row, ep in enumerate(episodes):
        incidence[row, [column[i] for i in ep.items]] = 1.0
    return incidence


def coverage(incidence: np.ndarray, n_items: int) -> WeightedStatistic:
    """Share of the catalogue recommended in the episodes with positive weight."""

    def statistic(weights: np.ndarray) -> np.ndarray:
        if incidence.shape[1] == 0 or n_items == 0:
            return np.zeros(weights.shape[0])
        return ((weights @ incidence) > 0).sum(axis=1) / n_items

    return statistic


def shared_metrics(episodes: Sequence[Episode], n_items: int) -> dict[str, WeightedStatistic]:
    """Len, R_each, R_traj, coverage, quit and capped share of ``episodes`` (catalogue of
    ``n_items``), in report order."""
    values = episode_values(episodes)
    return {
        "len": weighted_mean(values["len"]),
        "r_each": reward_per_step(values["len"], values["r_traj"]),
        "r_traj": weighted_mean(values["r_traj"]),
        "coverage": coverage(item_incidence(episodes), n_items),
        "quit_share": weighted_mean(values["quit_share"]),
        "capped_share": weighted_mean(values["capped_share"]),
    }


def summarize(episodes: Sequence[Episode], n_items: int) -> dict[str, Any]:
    """The point estimates of :func:`shared_metrics` (0.0 where undefined) and the LLM
    fallbacks of ``episodes``."""
    if not episodes:
        return {"episodes": 0, "len": 0.0, "r_each": 0.0, "r_traj": 0.0, "coverage": 0.0}
    ones = np.ones((1, len(episodes)))
    point = {name: float(stat(ones)[0]) for name, stat in shared_metrics(episodes, n_items).items()}
    return {
        "episodes": len(episodes),
        **{name: round(value, 6) if math.isfinite(value) else 0.0 for name, value in point.items()},
        "fallbacks": sum(ep.fallbacks for ep in episodes),
    }


def summarize_episodes(episodes: Sequence[Episode], n_items: int) -> dict[str, Any]:
    """Per-phase summaries for ``summary.json``; the headline numbers are the test phase's.

    Point estimates only; ``python -m billp.evaluation`` adds intervals and the other metrics.
    """
    return {
        phase: summarize([ep for ep in episodes if ep.phase == phase], n_items)
        for phase in ("train", "test")
    }
