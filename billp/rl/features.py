"""LE features of logged transitions: state vectors, rewards and proposed positive actions.

The RL recommender queries the LE offline, once per logged transition, and caches what it
gets (safetensors plus a JSON manifest, never pickle), because LE forward passes are the slow
part on CPU. Everything the trainer needs comes from one scoring call per transition: the LE
scores the logged action together with a candidate pool (the unseen items nearest to the
state) after the prefix, which gives their rewards and, as a by-product, the state after the
prefix extended by each of them (the next state of the logged and of every proposed action).

The LE interface and its implementations live in :mod:`billp.rl.le_models`, the disk cache in
:mod:`billp.rl.feature_cache`; both are re-exported here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from billp.rl.feature_cache import (
    FEATURE_VERSION,
    cache_key,
    read_cache,
    write_cache,
)
from billp.rl.le_models import (
    LEFeatureModel,
)
from billp.rl.transitions import LoggedTransitions

__all__ = [
    "NO_ITEM",
    "PROGRESS_EVERY_S",
    "LEFeatures",
    "ProgressLine",
    "compute_features",
    "context_states",
    "load_or_compute_context_states",
    "load_or_compute_features",
    "propose",
]

logger = logging.getLogger(__name__)

NO_ITEM = -1
"""Marks a proposed-action slot left empty (fewer unseen candidates than asked for)."""
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class LEFeatures:
    """LE features of each logged transition (row order of the transitions)."""

    state: np.ndarray
    """``[N, d]`` state after the prefix."""
    next_state: np.ndarray
    """``[N, d]`` state after the prefix and the logged action."""
    reward: np.ndarray
    """``[N]`` LE reward of the logged action."""
    aug_items: np.ndarray
    """``[N, A]`` proposed positives (best first; ``NO_ITEM`` for an empty slot)."""
    aug_reward: np.ndarray
    """``[N, A]`` their LE rewards."""
    aug_next_state: np.ndarray
    """``[N, A, d]`` state after the prefix and each proposed positive."""

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "state": self.state,
            "next_state": self.next_state,
            "reward": self.reward,
            "aug_items": self.aug_items,
            "aug_reward": self.aug_reward,
            "aug_next_state": self.aug_next_state,
        }


def propose(
    pool: np.ndarray, pool_rewards: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n`` best-rewarded pool items (ties to the lower id) with their rewards and their
    positions in ``pool``; empty slots hold ``NO_ITEM``, reward 0 and position -1."""
    order = np.lexsort((pool, -pool_rewards))[:n]
    items = np.full(n, NO_ITEM, dtype=np.int64)
    rewards = np.zeros(n, dtype=np.float32)
    where = np.full(n, -1, dtype=np.int64)
    items[: len(order)] = pool[order]
    rewards[: len(order)] = pool_rewards[order]
    where[: len(order)] = order
    return items, rewards, where


def compute_features(
    transitions: LoggedTransitions,
    model: LEFeatureModel,
    n_augmented: int,
    candidate_pool: int,
    progress: Callable[[int, int], None] | None = None,
) -> LEFeatures:
    """Query ``model`` once per transition (plus once per user for the first state).

    The proposed positives are the best-rewarded of the ``candidate_pool`` items nearest to
    the state that the user has not interacted with anywhere in the log.
    """
    n, d, a = len(transitions), model.state_dim, n_augmented
    state = np.zeros((n, d), dtype=np.float32)
    next_state = np.zeros((n, d), dtype=np.float32)
    reward = np.zeros(n, dtype=np.float32)
    aug_items = np.full((n, a), NO_ITEM, dtype=np.int64)
    aug_reward = np.zeros((n, a), dtype=np.float32)
    aug_next = np.zeros((n, a, d), dtype=np.float32)
    previous: tuple[int, int] | None = None
    for row in range(n):
        user, position = int(transitions.users[row]), int(transitions.positions[row])
        prefix = transitions.prefix(row)
        if previous == (user, position - 1):
            state[row] = next_state[row - 1]
        else:
            state[row] = model.state(user, prefix)
        pool = (
            model.nearest(state[row], candidate_pool, transitions.seen(user))
            if a
            else np.zeros(0, np.int64)
        )
        action = int(transitions.actions[row])
        rewards, states = model.score_with_states(user, prefix, [action, *pool.tolist()])
        reward[row], next_state[row] = rewards[0], states[0]
        if a:
            items, item_rewards, where = propose(pool, rewards[1:], a)
            aug_items[row], aug_reward[row] = items, item_rewards
            filled = where >= 0
            aug_next[row, filled] = states[1:][where[filled]]
        previous = (user, position)
        if progress is not None:
            progress(row + 1, n)
    return LEFeatures(state, next_state, reward, aug_items, aug_reward, aug_next)


def context_states(
    model: LEFeatureModel,
    users: Sequence[int],
    contexts: Sequence[Sequence[int]],
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``[M, d]`` LE state after each context."""
    out = np.zeros((len(contexts), model.state_dim), dtype=np.float32)
    for row, (user, context) in enumerate(zip(users, contexts, strict=True)):
        out[row] = model.state(int(user), list(context))
        if progress is not None:
            progress(row + 1, len(contexts))
    return out


class ProgressLine:
    """Rate-limited progress lines through logging: ``what i/n (x/s, eta)``."""

    def __init__(self, what: str, enabled: bool = True) -> None:
        self.what, self.enabled = what, enabled
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < PROGRESS_EVERY_S and done < total):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        eta = (total - done) / max(rate, 1e-9)
        logger.info("%s %d/%d (%.1f/s, eta %.0f s)", self.what, done, total, rate, eta)


def load_or_compute_features(
    transitions: LoggedTransitions,
    model: LEFeatureModel,
    n_augmented: int,
    candidate_pool: int,
    cache_dir: Path,
    dataset_fingerprint: str,
    progress: bool = True,
) -> LEFeatures:
    """:func:`compute_features`, cached under ``cache_dir`` by everything it depends on."""
    key = cache_key(
        "transitions",
        dataset_fingerprint,
        model.identity,
        n_augmented,
        candidate_pool,
        transitions.users,
        transitions.positions,
    )
    names = list(LEFeatures.__dataclass_fields__)
    cached = read_cache(cache_dir, key, names)
    if cached is not None and len(cached["reward"]) == len(transitions):
        logger.info("LE features of %d transitions from %s", len(transitions), cache_dir)
        return LEFeatures(**{name: cached[name] for name in names})
    started = time.perf_counter()
    features = compute_features(
        transitions,
        model,
        n_augmented,
        candidate_pool,
        ProgressLine("LE features of transitions", progress),
    )
    elapsed = time.perf_counter() - started
    meta = {
        "version": FEATURE_VERSION,
        "kind": "transitions",
        "model": model.identity,
        "dataset": dataset_fingerprint,
        "transitions": len(transitions),
        "n_augmented": n_augmented,
        "candidate_pool": candidate_pool,
        "seconds": round(elapsed, 1),
    }
    write_cache(cache_dir, key, features.arrays(), meta)
    logger.info("LE features of %d transitions in %.0f s", len(transitions), elapsed)
    return features


def load_or_compute_context_states(
    model: LEFeatureModel,
    users: np.ndarray,
    contexts: Sequence[Sequence[int]],
    cache_dir: Path,
    dataset_fingerprint: str,
    progress: bool = True,
) -> np.ndarray:
    """:func:`context_states`, cached like the transition features."""
    flat = np.asarray([i for c in contexts for i in c], dtype=np.int64)
    lengths = np.asarray([len(c) for c in contexts], dtype=np.int64)
    key = cache_key("contexts", dataset_fingerprint, model.identity, users, flat, lengths)
    cached = read_cache(cache_dir, key, ["state"])
    if cached is not None and len(cached["state"]) == len(contexts):
        return cached["state"]
    started = time.perf_counter()
    states = context_states(model, users, contexts, ProgressLine("LE states of contexts", progress))
    meta = {
        "version": FEATURE_VERSION,
        "kind": "contexts",
        "model": model.identity,
        "dataset": dataset_fingerprint,
        "contexts": len(contexts),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_cache(cache_dir, key, {"state": states}, meta)
    return states
