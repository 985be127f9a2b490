"""Do the two worlds agree on which policy is better? Policy rollouts in both, Kendall's tau.

Only policies that are neither world's oracle take part: none of them ranks items by the
reward model of the world it plays in. The simple ones are built here (random, popularity,
a BPR ranking model, each also in a "diverse" form that skips items the quit rule would
reject); the trained RL policies (``python -m billp.rl train``) join when their checkpoints
exist. Every policy plays the same test users, one episode each, in both worlds; the
agreement is Kendall's tau-b between the two orders of mean R_traj, with a percentile CI from
resampling users (paired: a resample keeps a user's episodes under every policy and world).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel
from scipy.stats import kendalltau

from billp.agents.baselines import GreedyDiversePolicy, GreedyPolicy, PopularityPolicy, RandomPolicy
from billp.data.dataset import Dataset
from billp.envs.world import World
from billp.policy.episode import play_episode
from billp.policy.protocol import Policy

logger = logging.getLogger(__name__)

SIMPLE_POLICIES = ("random", "popularity", "popularity-diverse", "bpr", "bpr-diverse")
RL_POLICIES = ("sqn", "sqn-rm", "sqn-sm", "lea", "sqn-all", "bcq")
TAU_RESAMPLES = 1000
TAU_SEED = 0


class StaticScores:
    """A ``UserModel``-shaped score table (per user, or one row for everyone): lets the greedy
    baselines rank by a model that is not the world's reward."""

    def __init__(self, name: str, table: np.ndarray) -> None:
        self.name = name
        self.table = np.atleast_2d(np.asarray(table, dtype=np.float64))

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        row = self.table[0 if self.table.shape[0] == 1 else int(user)]
        return row[np.asarray(items, dtype=np.int64)]

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        return float(self.rewards(user, history, [item])[0])


class EpisodeResult(BaseModel):
    """One rollout."""

    user_id: int
    items: list[int]
    rewards: list[float]
    quit_reason: str | None

    @property
    def total(self) -> float:
        return float(sum(self.rewards))


class PolicyResult(BaseModel):
    """One policy in one world."""

    mean_return: float
    mean_length: float
    quit_reasons: dict[str, int]
    """Why episodes ended ("step_cap" when none quit)."""
    returns: list[float]
    """R_traj per user, in the order of :attr:`Agreement.users`."""


class Agreement(BaseModel):
    """Mean R_traj of each policy in each world, and how well the two orders agree."""

    users: list[int]
    max_steps: int
    policies: dict[str, dict[str, PolicyResult]]
    """world -> policy -> result."""
    kendall_tau: float
    tau_ci: list[float]
    """95 % percentile interval of tau over user resamples."""
    skipped: dict[str, str]
    """Policies that could not be built, and why."""


async def _episode(policy: Policy, world: World, user: int, seed: int) -> EpisodeResult:
    agent = policy.spawn(f"{policy.name}-{user}", seed)
    played = await play_episode(agent, world.make_env([user]), user, seed)
    summary = played.summary
    return EpisodeResult(
        user_id=user,
        items=summary.items,
        rewards=[step.reward for step in played.steps],
        quit_reason=summary.quit_reason,
    )


def rollout(policy: Any, world: World, users: Sequence[int], seed: int) -> list[EpisodeResult]:
    """One episode per user, in order, each seeded from ``seed`` and the user id."""

    async def run_all() -> list[EpisodeResult]:
        return [await _episode(policy, world, int(u), seed + int(u)) for u in users]

    return asyncio.run(run_all())


def simple_policies(dataset: Dataset, world: World, bpr_scores: np.ndarray) -> dict[str, Policy]:
    """The non-oracle baselines, built for ``world`` (the diverse ones read its quit rule)."""
    catalogue = dataset.catalogue
    popularity = StaticScores("popularity", dataset.item_popularity.astype(np.float64))
    bpr = StaticScores("bpr", bpr_scores)
    policies: dict[str, Any] = {
        "random": RandomPolicy(catalogue),
        "popularity": PopularityPolicy(catalogue, dataset.item_popularity),
        "popularity-diverse": GreedyDiversePolicy(catalogue, popularity, world.quit_rule),  # type: ignore[arg-type]
        "bpr": GreedyPolicy(catalogue, bpr),  # type: ignore[arg-type]
        "bpr-diverse": GreedyDiversePolicy(catalogue, bpr, world.quit_rule),  # type: ignore[arg-type]
    }
    return policies


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (nan when undefined, e.g. a constant order)."""
    if len(x) < 2:
        return math.nan
    value = kendalltau(x, y).statistic
    return float(value) if value is not None else math.nan


def tau_interval(
    returns: Mapping[str, Mapping[str, Sequence[float]]],
    names: Sequence[str],
    resamples: int = TAU_RESAMPLES,
    seed: int = TAU_SEED,
) -> tuple[float, float]:
    """95 % percentile interval of tau between the worlds' orders over user resamples."""
    worlds = list(returns)
    if len(worlds) != 2 or len(names) < 2:
        return math.nan, math.nan
    matrices = [np.asarray([returns[w][p] for p in names], dtype=np.float64) for w in worlds]
    n_users = matrices[0].shape[1]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        chosen = rng.integers(n_users, size=n_users)
        means = [m[:, chosen].mean(axis=1) for m in matrices]
        value = kendall_tau_b(means[0].tolist(), means[1].tolist())
        if not math.isnan(value):
            draws.append(value)
    if not draws:
        return math.nan, math.nan
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def policy_agreement(
    worlds: Mapping[str, World],
    build: Callable[[World], dict[str, Policy]],
    users: Sequence[int],
    seed: int,
    skipped: Mapping[str, str] | None = None,
) -> Agreement:
    """Play every policy ``build`` makes for each world on ``users``; tau between the worlds.

    ``worlds`` must hold exactly two worlds sharing one ``max_steps``. ``skipped`` (policy ->
    why it is missing) is copied after every ``build`` call, so ``build`` may fill it.
    """
    if len(worlds) != 2:
        raise ValueError(f"policy agreement compares two worlds, got {list(worlds)}")
    results: dict[str, dict[str, PolicyResult]] = {}
    for world_name, world in worlds.items():
        results[world_name] = {}
        for policy_name, policy in build(world).items():
            started = time.perf_counter()
            episodes = rollout(policy, world, users, seed)
            reasons: dict[str, int] = {}
            for episode in episodes:
                key = episode.quit_reason or "step_cap"
                reasons[key] = reasons.get(key, 0) + 1
            returns = [e.total for e in episodes]
            results[world_name][policy_name] = PolicyResult(
                mean_return=float(np.mean(returns)),
                mean_length=float(np.mean([len(e.items) for e in episodes])),
                quit_reasons=reasons,
                returns=returns,
            )
            logger.info(
                "%s in the %s world: mean R_traj %.2f over %d users (%.0f s)",
                policy_name,
                world_name,
                results[world_name][policy_name].mean_return,
                len(users),
                time.perf_counter() - started,
            )
    first, second = list(results)
    names = [p for p in results[first] if p in results[second]]
    tau = kendall_tau_b(
        [results[first][p].mean_return for p in names],
        [results[second][p].mean_return for p in names],
    )
    per_user = {w: {p: results[w][p].returns for p in names} for w in results}
    low, high = tau_interval(per_user, names)
    max_steps = next(iter(worlds.values())).config.max_steps
    return Agreement(
        users=[int(u) for u in users],
        max_steps=max_steps,
        policies=results,
        kendall_tau=tau,
        tau_ci=[low, high],
        skipped=dict(skipped or {}),
    )
