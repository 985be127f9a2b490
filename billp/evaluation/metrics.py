"""Long-term engagement metrics of a set of episodes.

Len, R_traj, R_each, coverage and the quit and capped shares are defined once, in
:mod:`billp.summary.episodes`, which ``summary.json`` uses too. Beyond them (all over the
*recommended* items of an episode, the quitting one included, since they describe what the
policy did):

- **genre entropy**: Shannon entropy (bits) of an episode's genre mix, where each
  recommended item spreads one unit of weight evenly over its genres.
- **item distance**: mean over unordered pairs of an episode's items of
  ``1 - Jaccard(genres_i, genres_j)`` (0: same genre set, 1: no genre in common; the
  quit rule's similarity); undefined for episodes of fewer than two items.
- **popularity percentile**: the mid-rank percentile (0..100) of an item's popularity
  (train interactions) in the catalogue, averaged over an episode's items; a uniformly
  random recommender scores 50, a popularity recommender close to 100.
- **novelty**: mean self-information ``-log2 p(i)`` (bits) of an episode's items, with
  ``p(i)`` the item's smoothed share of train interactions.
- ``quit_<reason>``: episodes ended by a quit of the quit rule's reason.

Per-episode metrics are averaged with every episode weighted equally; episodes where a
metric is undefined are left out of that metric's mean. Every metric is a *weighted
statistic* (see :mod:`billp.evaluation.bootstrap`), so its bootstrap interval comes from
the same code as its point estimate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np

from billp.evaluation.bootstrap import Interval, bootstrap
from billp.records import EpisodeRecord
from billp.records.read import RunData, load_dataset_cached
from billp.summary.episodes import (
    WeightedStatistic,
    episode_values,
    shared_metrics,
    weighted_mean,
)

QUIT_REASONS: tuple[str, ...] = ("low_reward", "too_similar", "repeat")
"""The quit rule's reasons, each reported as a share of episodes."""
NO_GENRE = "(no genre)"
"""Pseudo-genre of items without genres (so two genre-less items are identical)."""
POPULARITY_SMOOTHING = 1.0
"""Additive smoothing of popularity counts in the novelty's item probabilities."""
PERCENT = 100.0


@dataclass(frozen=True)
class ItemFeatures:
    """What metrics need to know about the catalogue."""

    genres: tuple[str, ...]
    genre_matrix: np.ndarray
    popularity: np.ndarray
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.genre_matrix.shape[0]
        if self.popularity.shape != (n,):
            raise ValueError(
                f"popularity has shape {self.popularity.shape}, expected ({n},) for {n} items"
            )
        if self.genre_matrix.shape[1] != len(self.genres):
            raise ValueError(
                f"genre_matrix has {self.genre_matrix.shape[1]} columns for "
                f"{len(self.genres)} genres"
            )

    @classmethod
    def from_genre_sets(
        cls,
        genre_sets: Sequence[frozenset[str] | set[str] | Sequence[str]],
        popularity: Sequence[float] | np.ndarray,
        labels: Sequence[str] = (),
    ) -> ItemFeatures:
        """Features from per-item genre sets; genre-less items get :data:`NO_GENRE`."""
        sets = [frozenset(g) for g in genre_sets]
        names = sorted({g for s in sets for g in s})
        if any(not s for s in sets):
            names.append(NO_GENRE)
        column = {name: j for j, name in enumerate(names)}
        matrix = np.zeros((len(sets), len(names)), dtype=bool)
        for i, s in enumerate(sets):
            for g in s or {NO_GENRE}:
                matrix[i, column[g]] = True
        return cls(tuple(names), matrix, np.asarray(popularity, dtype=np.float64), tuple(labels))

    @property
    def n_items(self) -> int:
        return int(self.genre_matrix.shape[0])

    def check(self, items: Sequence[int], where: str) -> None:
        """Raise ``ValueError`` naming ``where`` if an item id is outside the catalogue."""
        for item in items:
            if not 0 <= int(item) < self.n_items:
                raise ValueError(
                    f"{where}: item id {item} is not in the catalogue of {self.n_items} items "
                    "(was the run made with another dataset?)"
                )

    def genre_weights(self) -> np.ndarray:
        """``[n_items, n_genres]``: each item's unit weight spread evenly over its genres."""
        counts = self.genre_matrix.sum(axis=1, keepdims=True)
        return self.genre_matrix / np.maximum(counts, 1)

    def popularity_percentile(self) -> np.ndarray:
        """Mid-rank percentile of each item's popularity: ``100 * (below + equal / 2) / n``."""
        pop = self.popularity
        order = np.sort(pop)
        below = np.searchsorted(order, pop, side="left")
        not_above = np.searchsorted(order, pop, side="right")
        return PERCENT * (below + (not_above - below) / 2.0) / max(len(pop), 1)

    def self_information(self) -> np.ndarray:
        """``-log2 p(i)`` with ``p(i) = (pop_i + a) / (sum(pop) + a * n)``, a = smoothing."""
        smoothed = self.popularity + POPULARITY_SMOOTHING
        return -np.log2(smoothed / smoothed.sum())


def run_features(run: RunData) -> ItemFeatures:
    """Genres, popularity and labels of the catalogue a run was made on (built once per data
    config)."""
    return _features(run.config.data.model_dump_json())


@cache
def _features(data_config_json: str) -> ItemFeatures:
    dataset = load_dataset_cached(data_config_json)
    return ItemFeatures.from_genre_sets(
        dataset.catalogue.genre_sets,
        dataset.item_popularity,
        labels=[item.label for item in dataset.catalogue],
    )


def genre_entropy(items: Sequence[int], features: ItemFeatures) -> float:
    """Entropy (bits) of the genre mix of ``items``; ``nan`` for no items."""
    if len(items) == 0:
        return float("nan")
    mass = features.genre_weights()[np.asarray(items, dtype=np.int64)].sum(axis=0)
    p = mass[mass > 0] / mass.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0


def mean_pairwise_distance(items: Sequence[int], features: ItemFeatures) -> float:
    """Mean ``1 - genre Jaccard`` over unordered pairs of ``items``; ``nan`` below two items."""
    n = len(items)
    if n < 2:
        return float("nan")
    m = features.genre_matrix[np.asarray(items, dtype=np.int64)].astype(np.float64)
    inter = m @ m.T
    sizes = m.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    jaccard = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    upper = np.triu_indices(n, k=1)
    return float(np.mean(1.0 - jaccard[upper]))


@dataclass
class EpisodeTable:
    """Per-episode values of a list of episodes, ready for weighted statistics."""

    episodes: list[EpisodeRecord]
    features: ItemFeatures
    per_episode: dict[str, np.ndarray] = field(init=False)
    shared: dict[str, WeightedStatistic] = field(init=False)
    """The metrics ``summary.json`` shares (:func:`billp.summary.episodes.shared_metrics`)."""
    durations: np.ndarray = field(init=False)
    events: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        eps = self.episodes
        f = self.features
        for ep in eps:
            f.check(ep.items, f"episode {ep.key}")
        percentile = f.popularity_percentile()
        information = f.self_information()

        def item_mean(values: np.ndarray, ep: EpisodeRecord) -> float:
            return float(values[ep.items].mean()) if ep.items else float("nan")

        values: dict[str, list[float]] = {
            "genre_entropy": [genre_entropy(ep.items, f) for ep in eps],
            "item_distance": [mean_pairwise_distance(ep.items, f) for ep in eps],
            "popularity_percentile": [item_mean(percentile, ep) for ep in eps],
            "novelty": [item_mean(information, ep) for ep in eps],
        }
        for reason in QUIT_REASONS:
            values[f"quit_{reason}"] = [
                float(ep.terminated and ep.quit_reason == reason) for ep in eps
            ]
        self.per_episode = {
            **episode_values(eps),
            **{k: np.array(v, dtype=np.float64) for k, v in values.items()},
        }
        self.shared = shared_metrics(eps, f.n_items)
        self.durations = np.array(
            [ep.length + 1 if ep.terminated else ep.steps for ep in eps], dtype=np.int64
        )
        self.events = np.array([ep.terminated for ep in eps], dtype=bool)

    def __len__(self) -> int:
        return len(self.episodes)


MetricKind = Literal["mean", "ratio", "set"]


@dataclass(frozen=True)
class MetricSpec:
    """A reported metric: its key, column label, kind and definition."""

    name: str
    label: str
    kind: MetricKind
    description: str
    digits: int = 3


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("len", "Len", "mean", "accepted recommendations per episode", 2),
    MetricSpec("r_each", "R_each", "ratio", "reward per accepted step, sum(R_traj)/sum(Len)", 3),
    MetricSpec("r_traj", "R_traj", "mean", "summed reward of accepted steps per episode", 2),
    MetricSpec("coverage", "coverage", "set", "distinct recommended items / catalogue size", 4),
    MetricSpec("genre_entropy", "genre H", "mean", "entropy (bits) of an episode's genre mix", 3),
    MetricSpec(
        "item_distance", "item dist", "mean", "mean pairwise 1 - genre Jaccard in an episode", 3
    ),
    MetricSpec(
        "popularity_percentile", "pop pct", "mean", "mean popularity percentile of items", 1
    ),
    MetricSpec("novelty", "novelty", "mean", "mean self-information (bits) of items", 2),
    MetricSpec("quit_share", "quit", "mean", "share of episodes ended by the user quitting", 3),
    MetricSpec("capped_share", "capped", "mean", "share of episodes ended by the step cap", 3),
    *(
        MetricSpec(f"quit_{r}", f"quit:{r}", "mean", f"share of episodes ended by a {r} quit", 3)
        for r in QUIT_REASONS
    ),
)
"""Every metric, in report order."""
METRIC_BY_NAME: dict[str, MetricSpec] = {m.name: m for m in METRICS}
PAPER_METRICS: tuple[str, ...] = ("len", "r_each", "r_traj")


def statistic_for(table: EpisodeTable, spec: MetricSpec) -> WeightedStatistic:
    """The weighted statistic computing ``spec`` on ``table``: a metric ``summary.json``
    shares, or the mean of a per-episode value."""
    if spec.name in table.shared:
        return table.shared[spec.name]
    return weighted_mean(table.per_episode[spec.name])


def compute_metrics(table: EpisodeTable, weights: np.ndarray, units: int) -> dict[str, Interval]:
    """Every metric's point estimate and interval from bootstrap ``weights``.

    ``units`` is what the interval is over (episodes, or runs for seed-level intervals).
    """
    return {
        spec.name: bootstrap(
            statistic_for(table, spec), weights, units, set_statistic=spec.kind == "set"
        )
        for spec in METRICS
    }
