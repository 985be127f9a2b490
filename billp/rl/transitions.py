"""The offline dataset builder: logged transitions and the item windows the encoders read.

A user's training log ``i_0, i_1, ..., i_{L-1}`` gives transitions ``t = 1..L-1``: the state is
the prefix ``i_0..i_{t-1}``, the action is ``i_t`` with its logged rating, and the next state is
the prefix ``i_0..i_t``. The first item only ever appears as context (the LE needs a non-empty
history). The last transition of a log is terminal. Windows are right-padded with the padding
id ``n_items``, so a GRU's output at ``length - 1`` never sees padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from billp.data import Dataset, Interactions


def seeded_subset(users: Sequence[int], count: int | None, seed: int) -> list[int]:
    """``count`` of ``users`` drawn with ``seed`` (sorted); all of them when ``count`` is None."""
    pool = sorted(int(u) for u in users)
    if count is None or count >= len(pool):
        return pool
    chosen = np.random.default_rng(seed).choice(len(pool), size=count, replace=False)
    return sorted(pool[int(i)] for i in chosen)


def user_sequences(interactions: Interactions, users: Sequence[int]) -> dict[int, np.ndarray]:
    """Each user's chronological item sequence in ``interactions``."""
    starts = np.searchsorted(interactions.users, users, side="left")
    ends = np.searchsorted(interactions.users, users, side="right")
    return {
        int(u): np.asarray(interactions.items[s:e], dtype=np.int64)
        for u, s, e in zip(users, starts, ends, strict=True)
    }


@dataclass(frozen=True)
class LoggedTransitions:
    """Parallel arrays, one entry per transition, plus the logs they index into."""

    users: np.ndarray
    positions: np.ndarray
    """Index of the action in its user's log; the state is the log before it."""
    actions: np.ndarray
    ratings: np.ndarray
    terminal: np.ndarray
    logs: dict[int, np.ndarray]

    def __len__(self) -> int:
        return len(self.users)

    def prefix(self, index: int) -> list[int]:
        """The history before transition ``index`` (oldest first)."""
        user, position = int(self.users[index]), int(self.positions[index])
        return [int(i) for i in self.logs[user][:position]]

    def seen(self, user: int) -> np.ndarray:
        """Every item of the user's log."""
        return self.logs[int(user)]


def build_transitions(
    dataset: Dataset, users: Sequence[int], max_per_user: int | None
) -> LoggedTransitions:
    """Transitions of ``users``' training logs, the latest ``max_per_user`` of each.

    Raises:
        ValueError: no user has a log of two or more items.
    """
    chosen = sorted(int(u) for u in users)
    ratings_of = _user_arrays(dataset.train_interactions, chosen)
    logs = user_sequences(dataset.train_interactions, chosen)
    rows: list[tuple[int, int, int, float, bool]] = []
    for user in chosen:
        items, ratings = logs[user], ratings_of[user]
        first = 1 if max_per_user is None else max(1, len(items) - max_per_user)
        for position in range(first, len(items)):
            last = position == len(items) - 1
            rows.append((user, position, int(items[position]), float(ratings[position]), last))
    if not rows:
        raise ValueError(
            f"no transitions: none of the {len(chosen)} users has a training log of 2+ items"
        )
    users_a, positions, actions, rewards, terminal = zip(*rows, strict=True)
    return LoggedTransitions(
        users=np.asarray(users_a, dtype=np.int64),
        positions=np.asarray(positions, dtype=np.int64),
        actions=np.asarray(actions, dtype=np.int64),
        ratings=np.asarray(rewards, dtype=np.float32),
        terminal=np.asarray(terminal, dtype=bool),
        logs=logs,
    )


def _user_arrays(interactions: Interactions, users: Sequence[int]) -> dict[int, np.ndarray]:
    starts = np.searchsorted(interactions.users, users, side="left")
    ends = np.searchsorted(interactions.users, users, side="right")
    return {
        int(u): np.asarray(interactions.ratings[s:e], dtype=np.float32)
        for u, s, e in zip(users, starts, ends, strict=True)
    }


def window(history: Sequence[int], max_len: int, pad: int) -> tuple[np.ndarray, int]:
    """The latest ``max_len`` items of ``history``, right-padded with ``pad``, and its length."""
    tail = list(history)[-max_len:]
    out = np.full(max_len, pad, dtype=np.int64)
    out[: len(tail)] = tail
    return out, len(tail)


def windows(
    histories: Sequence[Sequence[int]], max_len: int, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`window` of each history, stacked: ``[N, max_len]`` and lengths ``[N]``."""
    out = np.full((len(histories), max_len), pad, dtype=np.int64)
    lengths = np.zeros(len(histories), dtype=np.int64)
    for row, history in enumerate(histories):
        out[row], lengths[row] = window(history, max_len, pad)
    return out, lengths


def append_items(
    windows_: np.ndarray, lengths: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``history + [item]``: a full window drops its oldest item first.

    ``windows_`` is ``[N, L]`` right-padded, ``items`` is ``[N]``.
    """
    out = windows_.copy()
    new_lengths = lengths.copy()
    max_len = windows_.shape[1]
    full = lengths >= max_len
    out[full, :-1] = windows_[full, 1:]
    out[full, -1] = items[full]
    rows = np.flatnonzero(~full)
    out[rows, lengths[rows]] = items[rows]
    new_lengths[rows] += 1
    return out, new_lengths


@dataclass(frozen=True)
class EvalCases:
    """Next-item cases of held-out users: the context before each target."""

    users: np.ndarray
    contexts: list[list[int]]
    targets: np.ndarray


def heldout_cases(dataset: Dataset, users: Sequence[int], per_user: int) -> EvalCases:
    """The first ``per_user`` held-out items of each user, each after everything before it."""
    chosen = sorted(int(u) for u in users)
    full = user_sequences(dataset.interactions, chosen)
    train = user_sequences(dataset.train_interactions, chosen)
    out_users: list[int] = []
    contexts: list[list[int]] = []
    targets: list[int] = []
    for user in chosen:
        sequence, start = full[user], len(train[user])
        for position in range(max(start, 1), min(len(sequence), start + per_user)):
            out_users.append(user)
            contexts.append([int(i) for i in sequence[:position]])
            targets.append(int(sequence[position]))
    return EvalCases(
        users=np.asarray(out_users, dtype=np.int64),
        contexts=contexts,
        targets=np.asarray(targets, dtype=np.int64),
    )
