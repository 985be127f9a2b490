"""LE features of logged transitions: state vectors, rewards and proposed positive actions.

The RL recommender queries the LE offline, once per logged transition, and caches what it
gets (safetensors plus a JSON manifest, never pickle), because LE forward passes are the slow
part on CPU. Everything the trainer needs comes from one scoring call per transition: the LE
scores the logged action together with a candidate pool (the unseen items nearest to the
state) after the prefix, which gives their rewards and, as a by-product, the state after the
prefix extended by each of them (the next state of the logged and of every proposed action).

:class:`LEFeatureModel` is the small interface this package needs from an LE. The real LE
(``billp.le.user_model.LEUserModel``) is adapted by :class:`LEAdapter`; :class:`FakeLE` is a
deterministic stand-in for tests and pipeline checks that also implements the simulator's
``UserModel``/``StateModel`` protocols, so it can drive an LE-style env.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from safetensors.numpy import load_file, save_file

from billp.data.dataset import RATING_MAX, RATING_MIN
from billp.rl.transitions import LoggedTransitions

logger = logging.getLogger(__name__)

FEATURE_VERSION = "billp-rl-features-1"
NO_ITEM = -1
"""Marks a proposed-action slot left empty (fewer unseen candidates than asked for)."""
FAKE_RECENCY_DECAY = 0.7
"""The fake LE's state weighs the history item ``k`` steps back by ``decay**k``."""
FAKE_REWARD_SHARPNESS = 4.0
"""The fake LE's reward is ``1 + 4 * sigmoid(sharpness * cosine(state, item))``."""
PROGRESS_EVERY_S = 10.0


@runtime_checkable
class LEFeatureModel(Protocol):
    """What the RL code needs from an LE (rewards on 1..5, unit-length states)."""

    name: str
    state_dim: int

    @property
    def identity(self) -> str:
        """Changes whenever the model's outputs could change (part of cache keys)."""
        ...

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        """float32 ``[state_dim]`` state after ``history``."""
        ...

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Rewards of ``items`` after ``history``."""
        ...

    def score_with_states(
        self, user: int, history: Sequence[int], items: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rewards ``[n]`` of ``items`` for ``user`` after ``history`` and the states ``[n, d]``
        after ``history + [item]`` for each."""
        ...

    def nearest(self, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
        """Up to ``k`` items not in ``exclude`` nearest to ``state``, nearest first."""
        ...


def _nearest(vectors: np.ndarray, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
    scores = vectors @ np.asarray(state, dtype=np.float32)
    allowed = np.ones(len(vectors), dtype=bool)
    allowed[np.asarray(exclude, dtype=np.int64)] = False
    candidates = np.flatnonzero(allowed)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]].astype(np.int64)


class FakeLE:
    """A deterministic LE stand-in: random unit item vectors; the state is the normalised,
    recency-weighted sum of the history's vectors; the reward grows with the cosine between
    the state and the item. It implements ``UserModel`` and ``StateModel`` too."""

    def __init__(self, n_items: int, dim: int, seed: int = 0) -> None:
        if n_items < 1 or dim < 2:
            raise ValueError(f"FakeLE needs n_items >= 1 and dim >= 2, got {n_items}, {dim}")
        self.name = "fake-le"
        self.n_items = n_items
        self.state_dim = dim
        self.seed = seed
        vectors = np.random.default_rng(seed).normal(size=(n_items, dim)).astype(np.float32)
        self.item_vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    @property
    def identity(self) -> str:
        return f"fake:{self.n_items}:{self.state_dim}:{self.seed}"

    def _check(self, items: Sequence[int], what: str) -> np.ndarray:
        array = np.asarray(items, dtype=np.int64).reshape(-1)
        bad = array[(array < 0) | (array >= self.n_items)]
        if bad.size:
            raise ValueError(f"{what}: item id {int(bad[0])} is not in 0..{self.n_items - 1}")
        return array

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        items = self._check(history, "history")
        if items.size == 0:
            raise ValueError("the fake LE needs a non-empty history")
        weights = FAKE_RECENCY_DECAY ** np.arange(len(items) - 1, -1, -1, dtype=np.float32)
        summed = (weights[:, None] * self.item_vectors[items]).sum(axis=0)
        return (summed / max(float(np.linalg.norm(summed)), 1e-8)).astype(np.float32)

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        candidates = self._check(items, "candidate items")
        cosine = self.item_vectors[candidates] @ self.state(user, history)
        span = RATING_MAX - RATING_MIN
        return (RATING_MIN + span / (1.0 + np.exp(-FAKE_REWARD_SHARPNESS * cosine))).astype(
            np.float32
        )

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        return float(self.rewards(user, history, [item])[0])

    def score_with_states(
        self, user: int, history: Sequence[int], items: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        rewards = self.rewards(user, history, items)
        states = (
            np.stack([self.state(user, [*history, int(i)]) for i in items])
            if len(items)
            else (np.zeros((0, self.state_dim), dtype=np.float32))
        )
        return rewards, states

    def nearest(self, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
        return _nearest(self.item_vectors, state, k, exclude)


class LEAdapter:
    """:class:`LEFeatureModel` over the project's LE (``billp.le.user_model.LEUserModel``).

    ``score_with_states`` uses the LE's ``score``, which returns the state after each candidate
    with its reward (one forward pass per call); an LE without it falls back to one ``state``
    call per item.
    """

    name = "le"

    def __init__(self, le: Any) -> None:
        self.le = le
        self.state_dim = int(le.state_dim)
        self.item_vectors = np.asarray(le.item_vectors, dtype=np.float32)
        manifest = getattr(getattr(le, "loaded", None), "manifest", None)
        described = manifest.model_dump_json() if hasattr(manifest, "model_dump_json") else "le"
        self._identity = "le:" + hashlib.sha256(described.encode()).hexdigest()[:16]

    @property
    def identity(self) -> str:
        return self._identity

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        return np.asarray(self.le.state(user, list(history)), dtype=np.float32)

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        return np.asarray(self.le.rewards(user, list(history), list(items)), dtype=np.float32)

    def score_with_states(
        self, user: int, history: Sequence[int], items: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self.le, "score"):
            rewards = self.rewards(user, history, items)
            states = [self.state(user, [*history, int(i)]) for i in items]
            return rewards, np.stack(states).astype(np.float32)
        scored = self.le.score(user, list(history), list(items))
        return scored.rewards.astype(np.float32), scored.states.astype(np.float32)

    def nearest(self, state: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
        return _nearest(self.item_vectors, state, k, exclude)


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


class FeatureCacheError(RuntimeError):
    """A cached feature file is unreadable or does not match its manifest."""


def cache_key(*parts: object) -> str:
    """sha256 over the given parts (arrays by their bytes, others by their repr)."""
    digest = hashlib.sha256(FEATURE_VERSION.encode())
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()


def _write(folder: Path, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.safetensors.tmp"
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))
    tmp.replace(folder / f"{key}.safetensors")
    (folder / f"{key}.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _read(folder: Path, key: str, expected: Sequence[str]) -> dict[str, np.ndarray] | None:
    path = folder / f"{key}.safetensors"
    if not path.is_file():
        return None
    try:
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise FeatureCacheError(
            f"feature cache {path} is unreadable ({exc}); delete it to recompute"
        ) from exc
    missing = [name for name in expected if name not in arrays]
    if missing:
        raise FeatureCacheError(f"feature cache {path} lacks {missing}; delete it to recompute")
    return arrays


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
    cached = _read(cache_dir, key, names)
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
    _write(cache_dir, key, features.arrays(), meta)
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
    cached = _read(cache_dir, key, ["state"])
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
    _write(cache_dir, key, {"state": states}, meta)
    return states
