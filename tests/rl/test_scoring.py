"""Ranks, HR@k and NDCG@k over the full catalogue (hand-computed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from billp.rl.scoring import hr_ndcg, ranks


def test_ranks_count_better_or_equal_allowed_items() -> None:
    scores = np.array([[0.9, 0.1, 0.5, 0.7], [0.2, 0.2, 0.2, 0.8]])
    # Row 0: target 2 (0.5) is beaten by items 0 and 3; excluding item 0 leaves one.
    # Row 1: target 0 ties with 1 and 2 (ties count against the target) and loses to 3.
    assert ranks(scores, np.array([2, 0]), [[], []]).tolist() == [2, 3]
    assert ranks(scores, np.array([2, 0]), [[0], [3]]).tolist() == [1, 2]


def test_the_target_is_never_excluded() -> None:
    scores = np.array([[0.1, 0.9]])
    assert ranks(scores, np.array([0]), [[0]]).tolist() == [1]


def test_hr_and_ndcg() -> None:
    metrics = hr_ndcg(np.array([0, 1, 4, 30]), ks=[1, 5])
    assert metrics["HR@1"] == pytest.approx(1 / 4)
    assert metrics["HR@5"] == pytest.approx(3 / 4)
    assert metrics["NDCG@1"] == pytest.approx(1 / 4)
    expected = (1.0 + 1 / math.log2(3) + 1 / math.log2(6)) / 4
    assert metrics["NDCG@5"] == pytest.approx(expected)
