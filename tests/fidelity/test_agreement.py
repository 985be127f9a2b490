"""Kendall's tau between the worlds' policy orders, and its user-resampling interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from billp.fidelity.agreement import StaticScores, kendall_tau_b, tau_interval


def test_tau_b_matches_hand_counts() -> None:
    assert kendall_tau_b([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # One discordant pair out of six: (5 - 1) / 6.
    assert kendall_tau_b([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert math.isnan(kendall_tau_b([1.0], [2.0]))


def test_interval_is_tight_when_every_user_agrees_and_wide_when_they_do_not() -> None:
    names = ["a", "b", "c", "d"]
    rng = np.random.default_rng(0)
    base = np.arange(4, dtype=np.float64)[:, None] * 5.0
    agree = {
        "matrix": {n: (base[k] + rng.normal(0, 0.1, 30)).tolist() for k, n in enumerate(names)},
        "le": {n: (base[k] + rng.normal(0, 0.1, 30)).tolist() for k, n in enumerate(names)},
    }
    low, high = tau_interval(agree, names, resamples=200)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    noisy = {
        world: {n: rng.normal(0, 5.0, 30).tolist() for n in names} for world in ("matrix", "le")
    }
    low, high = tau_interval(noisy, names, resamples=200)
    assert low < 0.0 < high


def test_static_scores_read_a_user_row_or_a_shared_row() -> None:
    shared = StaticScores("popularity", np.array([3.0, 1.0, 2.0]))
    assert shared.rewards(7, [], [2, 0]).tolist() == [2.0, 3.0]
    per_user = StaticScores("bpr", np.array([[1.0, 2.0], [5.0, 4.0]]))
    assert per_user.reward(1, [0], 0) == 5.0
