"""The offline dataset builder: transitions, windows and held-out cases (hand-checked)."""

from __future__ import annotations

import numpy as np
import pytest

from billp.data import Dataset
from billp.rl.transitions import (
    append_items,
    build_transitions,
    heldout_cases,
    seeded_subset,
    window,
    windows,
)


def test_transitions_follow_each_log_from_its_second_item(toy_dataset: Dataset) -> None:
    user = toy_dataset.split.train_users[0]
    log = toy_dataset.user_log(user)
    built = build_transitions(toy_dataset, [user], max_per_user=None)
    assert len(built) == len(log) - 1
    assert built.positions.tolist() == list(range(1, len(log)))
    assert built.actions.tolist() == log.items[1:].tolist()
    assert built.ratings.tolist() == pytest.approx(log.ratings[1:].tolist())
    assert built.terminal.tolist() == [False] * (len(log) - 2) + [True]
    assert built.prefix(2) == log.items[:3].tolist()


def test_max_per_user_keeps_the_latest_transitions(toy_dataset: Dataset) -> None:
    users = toy_dataset.split.train_users[:3]
    built = build_transitions(toy_dataset, users, max_per_user=4)
    for user in users:
        rows = built.users == user
        n = len(toy_dataset.user_log(user))
        assert built.positions[rows].tolist() == list(range(n - 4, n))
        assert built.terminal[rows].tolist() == [False, False, False, True]


def test_seeded_subset_is_reproducible_and_sorted() -> None:
    users = list(range(50))
    first = seeded_subset(users, 7, seed=3)
    assert first == seeded_subset(users, 7, seed=3) == sorted(first)
    assert len(set(first)) == 7
    assert seeded_subset(users, None, seed=3) == users
    assert seeded_subset(users, 80, seed=3) == users


def test_windows_right_pad_and_keep_the_latest_items() -> None:
    assert window([1, 2], 4, pad=9)[0].tolist() == [1, 2, 9, 9]
    assert window([1, 2, 3, 4, 5], 3, pad=9)[0].tolist() == [3, 4, 5]
    stacked, lengths = windows([[1], [1, 2, 3, 4]], 3, pad=9)
    assert stacked.tolist() == [[1, 9, 9], [2, 3, 4]]
    assert lengths.tolist() == [1, 3]


def test_append_items_fills_the_next_slot_or_shifts_a_full_window() -> None:
    stacked = np.array([[1, 9, 9], [2, 3, 4]])
    out, lengths = append_items(stacked, np.array([1, 3]), np.array([7, 8]))
    assert out.tolist() == [[1, 7, 9], [3, 4, 8]]
    assert lengths.tolist() == [2, 3]


def test_heldout_cases_predict_each_heldout_item_after_everything_before(
    toy_dataset: Dataset,
) -> None:
    user = toy_dataset.split.test_users[0]
    cases = heldout_cases(toy_dataset, [user], per_user=2)
    full = toy_dataset.interactions.items[toy_dataset.interactions.users == user]
    n_train = len(toy_dataset.user_log(user))
    assert cases.targets.tolist() == full[n_train : n_train + 2].tolist()
    assert cases.contexts[0] == full[:n_train].tolist()
    assert cases.contexts[1] == full[: n_train + 1].tolist()
