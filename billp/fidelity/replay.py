"""How each world treats real held-out behaviour (see :mod:`billp.envs.replay`), with CIs.

Per world: the share of real next items it accepts, why it rejects the others, how long a real
sequence survives before the first quit, and how its rewards compare with the real ratings.
Intervals are 95 % percentile intervals over user resamples (a user's items stay together).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel
from scipy.stats import spearmanr

from billp.data.dataset import Dataset
from billp.envs.quit_rule import QuitRule
from billp.envs.replay import ReplayedUser, replay_user
from billp.envs.user_model import UserModel

RESAMPLES = 1000
SEED = 0


class Estimate(BaseModel):
    """A point estimate and its 95 % interval."""

    value: float
    low: float
    high: float


class ReplayStats(BaseModel):
    """One world's verdicts on real held-out sequences."""

    users: int
    items: int
    acceptance: Estimate
    """Share of real next items accepted (pooled over items)."""
    verdicts: dict[str, int]
    """accepted / too_similar / low_reward / repeat counts."""
    survival: Estimate
    """Mean real items consumed before the first quit (the quitting one included)."""
    sequence_length: float
    """Mean length of the replayed sequences (the survival if nothing quit)."""
    mean_reward: float
    mean_rating: float
    reward_rmse: float
    """RMSE of the world's reward against the real rating of the same items."""
    reward_spearman: float


def _interval(
    per_user: Sequence[np.ndarray], statistic: Callable[[Sequence[np.ndarray]], float]
) -> Estimate:
    rng = np.random.default_rng(SEED)
    draws = [
        statistic([per_user[i] for i in rng.integers(len(per_user), size=len(per_user))])
        for _ in range(RESAMPLES)
    ]
    low, high = np.percentile(draws, [2.5, 97.5])
    return Estimate(value=statistic(per_user), low=float(low), high=float(high))


def _pooled_mean(chosen: Sequence[np.ndarray]) -> float:
    return float(np.concatenate(chosen).mean())


def _mean_of_firsts(chosen: Sequence[np.ndarray]) -> float:
    return float(np.mean([a[0] for a in chosen]))


def summarise(replayed: Sequence[ReplayedUser]) -> ReplayStats:
    """Pool the replayed users' verdicts into a :class:`ReplayStats`."""
    kept = [r for r in replayed if r.items]
    if not kept:
        raise ValueError("no user has held-out items to replay")
    accepted = [np.asarray([v == "accepted" for v in r.verdicts], dtype=np.float64) for r in kept]
    survival = [np.asarray([r.survival], dtype=np.float64) for r in kept]
    verdicts: dict[str, int] = {}
    for r in kept:
        for verdict in r.verdicts:
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
    rewards = np.concatenate([r.rewards for r in kept])
    ratings = np.concatenate([r.ratings for r in kept])
    return ReplayStats(
        users=len(kept),
        items=int(rewards.size),
        acceptance=_interval(accepted, _pooled_mean),
        verdicts=dict(sorted(verdicts.items())),
        survival=_interval(survival, _mean_of_firsts),
        sequence_length=float(np.mean([len(r.items) for r in kept])),
        mean_reward=float(rewards.mean()),
        mean_rating=float(ratings.mean()),
        reward_rmse=float(np.sqrt(np.mean((rewards - ratings) ** 2))),
        reward_spearman=float(spearmanr(rewards, ratings).statistic),
    )


def validate_world(
    dataset: Dataset, model: UserModel, rule: QuitRule, users: Sequence[int], max_items: int
) -> ReplayStats:
    """Replay ``users``' first ``max_items`` held-out items through one world."""
    return summarise([replay_user(dataset, model, rule, int(u), max_items) for u in users])
