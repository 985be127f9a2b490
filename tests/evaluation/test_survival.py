"""Kaplan-Meier against a hand-computed example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from billp.evaluation.metrics import EpisodeTable, ItemFeatures
from billp.evaluation.survival import kaplan_meier, weighted_survival
from tests.evaluation.conftest import make_episode

# Eight subjects; (time, event): (1,x) (2,x) (2,c) (3,x) (4,x) (4,c) (5,c) (5,x)
DURATIONS = [1, 2, 2, 3, 4, 4, 5, 5]
EVENTS = [True, True, False, True, True, False, False, True]
# By hand, S(t) = prod over event times <= t of (1 - d/n):
#   t=1: n=8, d=1 -> 7/8
#   t=2: n=7, d=1 (the censored one is still at risk at 2) -> 7/8 * 6/7 = 3/4
#   t=3: n=5, d=1 -> 3/4 * 4/5 = 3/5
#   t=4: n=4, d=1 -> 3/5 * 3/4 = 9/20
#   t=5: n=2, d=1 -> 9/20 * 1/2 = 9/40
HAND_SURVIVAL = [1.0, 7 / 8, 3 / 4, 3 / 5, 9 / 20, 9 / 40]
HAND_AT_RISK = [8, 8, 7, 5, 4, 2]
# Greenwood at t=2: S^2 * (1/(8*7) + 1/(7*6)) = (9/16) * (1/56 + 1/42) = 9/16 * 1/24
HAND_GREENWOOD_2 = math.sqrt(9 / 16 / 24)


def test_kaplan_meier_by_hand() -> None:
    curve = kaplan_meier(DURATIONS, EVENTS)
    assert curve.times.tolist() == [0, 1, 2, 3, 4, 5]
    assert curve.survival == pytest.approx(HAND_SURVIVAL)
    assert curve.at_risk.tolist() == HAND_AT_RISK
    assert curve.events.tolist() == [0, 1, 1, 1, 1, 1]
    assert curve.censored.tolist() == [0, 0, 1, 0, 1, 1]
    assert curve.greenwood_se[2] == pytest.approx(HAND_GREENWOOD_2)
    assert curve.median() == 4.0  # first t with S(t) <= 0.5


def test_horizon_extends_the_curve_flat() -> None:
    curve = kaplan_meier([2, 3], [True, False], horizon=6)
    assert curve.survival.tolist() == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert curve.median() == 2.0
    assert math.isnan(kaplan_meier([2, 3, 4], [True, False, False]).median())  # S stays 2/3


def test_weighted_survival_with_unit_weights_is_kaplan_meier() -> None:
    curves = weighted_survival(DURATIONS, EVENTS, np.ones((1, len(DURATIONS))), 5)
    assert curves[0] == pytest.approx(HAND_SURVIVAL)
    # A weight of 2 is the same as listing the subject twice.
    doubled = weighted_survival(DURATIONS, EVENTS, np.array([[2.0] + [1.0] * 7]), 5)[0]
    assert doubled == pytest.approx(kaplan_meier([1, *DURATIONS], [True, *EVENTS]).survival)


def test_episode_survival_uses_the_cap_as_censoring() -> None:
    features = ItemFeatures.from_genre_sets([{"A"}, {"B"}, {"C"}], [1, 2, 3])
    cap = 3
    episodes = [
        make_episode("a", [0], [1.0], terminated=True, quit_reason="low_reward"),  # Len 0
        make_episode("b", [0, 1], [4.0, 1.0], terminated=True, quit_reason="low_reward"),  # Len 1
        make_episode("c", [0, 1, 2], [4.0] * 3, terminated=False, truncated=True),  # capped
        make_episode("d", [0, 1, 2], [4.0] * 3, terminated=False, truncated=True),  # capped
    ]
    table = EpisodeTable(episodes, features)
    curve = kaplan_meier(table.durations, table.events, cap)
    # S(t) = share of users who accepted at least t recommendations
    lengths = np.array([e.length for e in episodes])
    assert curve.survival.tolist() == pytest.approx([np.mean(lengths >= t) for t in range(cap + 1)])
    assert curve.censored.tolist() == [0, 0, 0, 2]


def test_invalid_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        kaplan_meier([1, 2], [True])
    with pytest.raises(ValueError, match=">= 0"):
        kaplan_meier([-1], [True])
    assert kaplan_meier([], []).survival.tolist() == [1.0]
