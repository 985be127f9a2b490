"""Model-level fidelity: the LE against the classic matrix models on the same held-out split.

Everything is measured on test users, on their held-out interactions (never seen by any model;
the matrix models, and by default the LE, learned from the test users' train part):

* ranking: each held-out item against ``negatives`` items the user never interacted with; AUC,
  HR@10 and NDCG@10. The LE ranks by its choice score psi, the matrix model by its rating, and
  the ranking-fair matrix model (BPR, :mod:`billp.envs.ranking_model`) by its ranking score.
* ratings: RMSE and Spearman rho of the reward against the held-out ratings.
* bias and range: Spearman rho between the reward of random items and their popularity; the
  reward of a repeated item next to that of a fresh random item; the spread of the rewards.

The world-level checks (real held-out sequences replayed through each world, policy-order
agreement) and the report itself live in :mod:`billp.fidelity.checkpoint`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel
from scipy.stats import spearmanr

from billp.data.dataset import Dataset
from billp.envs.user_model import MatrixUserModel, UserModel
from billp.le.train_data import heldout_data
from billp.le.user_model import LEUserModel

logger = logging.getLogger(__name__)

TOP_K = 10
POPULARITY_ITEMS_PER_USER = 20
"""Random items per test user whose reward is correlated with popularity."""
REWARD_MODELS = ("le", "matrix")
"""The worlds' reward models (the BPR model ranks only)."""


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho with tied ranks averaged; NaN when either side is constant."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def rank_metrics(positive: float, negatives: np.ndarray, k: int) -> tuple[float, float, float]:
    """AUC, HR@k and NDCG@k of one positive among negatives (ties count half)."""
    negatives = np.asarray(negatives, dtype=np.float64)
    greater = float((negatives > positive).sum())
    equal = float((negatives == positive).sum())
    auc = 1.0 - (greater + 0.5 * equal) / negatives.size
    rank = greater + 0.5 * equal
    hit = 1.0 if rank < k else 0.0
    ndcg = 1.0 / math.log2(rank + 2.0) if rank < k else 0.0
    return auc, hit, ndcg


class ModelFidelity(BaseModel):
    """One model's numbers (rating and reward fields are None for a ranking-only model)."""

    auc: float
    hr_at_10: float
    ndcg_at_10: float
    rating_rmse: float | None = None
    rating_spearman: float | None = None
    reward_popularity_spearman: float | None = None
    mean_reward_random_item: float | None = None
    mean_reward_repeat_last: float | None = None
    mean_reward_repeat_random: float | None = None
    reward_range: list[float] | None = None
    """Lowest and highest reward over the probes (random items and repeats of test users)."""
    reward_share_below_2: float | None = None
    """Share of random-item rewards below 2 (the default low-reward quit threshold)."""


class RatingCheck(BaseModel):
    """The held-out rating check, shared by the reward models."""

    points: int
    constant_rmse: float
    """RMSE of predicting the train mean rating everywhere."""
    data_popularity_spearman: float
    """Spearman rho between the held-out ratings and their items' popularity."""


def sample_test_users(dataset: Dataset, count: int | None, seed: int) -> list[int]:
    """All test users, or a seeded subset of ``count`` (sorted)."""
    users = np.asarray(dataset.split.test_users, dtype=np.int64)
    if count is not None and count < len(users):
        users = np.random.default_rng(seed).choice(users, size=count, replace=False)
    return sorted(int(u) for u in users)


def _unseen(dataset: Dataset, user: int) -> np.ndarray:
    interactions = dataset.interactions
    seen = np.zeros(len(dataset.catalogue), dtype=bool)
    seen[interactions.items[interactions.users == user]] = True
    return np.flatnonzero(~seen)


def ranking_metrics(
    dataset: Dataset,
    users: list[int],
    le: LEUserModel,
    matrix: MatrixUserModel,
    bpr_scores: np.ndarray,
    positions: int,
    negatives: int,
    rng: np.random.Generator,
) -> tuple[dict[str, tuple[float, float, float]], int]:
    """Mean AUC, HR@10, NDCG@10 per model over held-out positives with sampled negatives."""
    values: dict[str, list[tuple[float, float, float]]] = {"le": [], "matrix": [], "bpr": []}
    heldout = dataset.heldout_interactions
    for user in users:
        train_items = dataset.user_log(user).items
        held_items = heldout.items[heldout.users == user]
        unseen = _unseen(dataset, user)
        if len(train_items) == 0 or len(unseen) < negatives:
            continue
        sequence = np.concatenate([train_items, held_items])
        for k in range(min(positions, len(held_items))):
            index = len(train_items) + k
            positive = int(sequence[index])
            sampled = rng.choice(unseen, size=negatives, replace=False)
            candidates = [positive, *(int(i) for i in sampled)]
            history = [int(i) for i in sequence[:index]]
            scores = le.raw_scores(history, candidates, user=user)
            values["le"].append(rank_metrics(float(scores[0]), scores[1:], TOP_K))
            ratings = matrix.rewards(user, history, candidates)
            values["matrix"].append(rank_metrics(float(ratings[0]), ratings[1:], TOP_K))
            ranked = bpr_scores[user, candidates]
            values["bpr"].append(rank_metrics(float(ranked[0]), ranked[1:], TOP_K))
    means = {m: tuple(float(x) for x in np.mean(np.asarray(v), axis=0)) for m, v in values.items()}
    return means, len(values["le"])  # type: ignore[return-value]


def rating_metrics(
    dataset: Dataset, users: list[int], le: LEUserModel, matrix: MatrixUserModel, per_user: int
) -> tuple[dict[str, tuple[float, float]], RatingCheck]:
    """RMSE and Spearman rho per reward model on held-out ratings, and the shared check."""
    data = heldout_data(dataset, users, per_user)
    le_pred = le.logged_ratings(data.sequences, data.known, data.targets)
    items = [[seq[t] for t in tgt] for seq, tgt in zip(data.sequences, data.targets, strict=True)]
    matrix_pred = np.concatenate(
        [matrix.matrix[user, chosen] for user, chosen in zip(data.users, items, strict=True)]
    )
    y = np.concatenate(data.ratings)

    def rmse(prediction: np.ndarray) -> float:
        return float(np.sqrt(np.mean((prediction - y) ** 2)))

    train_mean = float(np.mean(dataset.train_interactions.ratings))
    popularity = dataset.item_popularity[np.concatenate(items).astype(np.int64)]
    check = RatingCheck(
        points=int(y.size),
        constant_rmse=rmse(np.full_like(y, train_mean)),
        data_popularity_spearman=spearman(y, popularity),
    )
    result = {
        "le": (rmse(le_pred), spearman(le_pred, y)),
        "matrix": (rmse(matrix_pred), spearman(matrix_pred, y)),
    }
    return result, check


class RewardProbe(BaseModel):
    """One reward model's answers to the shared probes."""

    popularity_spearman: float
    mean_random: float
    mean_repeat_last: float
    mean_repeat_random: float
    reward_range: list[float]
    share_below_2: float


def bias_metrics(
    dataset: Dataset,
    users: list[int],
    models: Mapping[str, UserModel],
    rng: np.random.Generator,
) -> dict[str, RewardProbe]:
    """Per model: Spearman(reward, popularity) over random items, the mean rewards of a random
    item, of repeating the last and a recent history item, and the spread of the rewards.
    Every model scores the same users, histories and items."""
    probes = []
    for user in users:
        history = [int(i) for i in dataset.user_log(user).items]
        if not history:
            continue
        drawn = rng.choice(len(dataset.catalogue), size=POPULARITY_ITEMS_PER_USER, replace=False)
        recent = history[-POPULARITY_ITEMS_PER_USER:]
        repeat = int(recent[int(rng.integers(len(recent)))])
        probes.append((user, history, [int(i) for i in drawn], repeat))
    out = {}
    for name, model in models.items():
        rewards: list[np.ndarray] = []
        popularity: list[np.ndarray] = []
        repeat_last: list[float] = []
        repeat_random: list[float] = []
        every: list[np.ndarray] = []
        for user, history, items, repeat in probes:
            scores = np.asarray(model.rewards(user, history, [*items, history[-1], repeat]))
            rewards.append(scores[:-2])
            every.append(scores)
            popularity.append(dataset.item_popularity[items])
            repeat_last.append(float(scores[-2]))
            repeat_random.append(float(scores[-1]))
        fresh = np.concatenate(rewards)
        spread = np.concatenate(every)
        out[name] = RewardProbe(
            popularity_spearman=spearman(fresh, np.concatenate(popularity)),
            mean_random=float(fresh.mean()),
            mean_repeat_last=float(np.mean(repeat_last)),
            mean_repeat_random=float(np.mean(repeat_random)),
            reward_range=[float(spread.min()), float(spread.max())],
            share_below_2=float(np.mean(fresh < 2.0)),
        )
    return out


def model_fidelity(
    ranking: Mapping[str, Sequence[float]],
    ratings: Mapping[str, Sequence[float]],
    probes: Mapping[str, RewardProbe],
) -> dict[str, ModelFidelity]:
    """Assemble each model's numbers (the BPR model has ranking numbers only)."""
    models = {}
    for name, (auc, hr, ndcg) in ranking.items():
        fields: dict[str, object] = {"auc": auc, "hr_at_10": hr, "ndcg_at_10": ndcg}
        if name in ratings:
            probe = probes[name]
            fields.update(
                rating_rmse=ratings[name][0],
                rating_spearman=ratings[name][1],
                reward_popularity_spearman=probe.popularity_spearman,
                mean_reward_random_item=probe.mean_random,
                mean_reward_repeat_last=probe.mean_repeat_last,
                mean_reward_repeat_random=probe.mean_repeat_random,
                reward_range=probe.reward_range,
                reward_share_below_2=probe.share_below_2,
            )
        models[name] = ModelFidelity.model_validate(fields)
    return models
