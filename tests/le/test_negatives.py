"""Uniform and popularity-matched negatives."""

from __future__ import annotations

import numpy as np
import pytest

from billp.le.errors import LEError
from billp.le.negatives import NegativeSampler


def test_popularity_matched_negatives_stay_near_the_positive_rank() -> None:
    popularity = np.arange(100, 0, -1)  # item i has rank i
    sampler = NegativeSampler(popularity, window=5, rng=np.random.default_rng(0))
    seen = {48, 52}
    draws = [sampler.popularity_matched(50, seen) for _ in range(300)]
    assert all(45 <= d <= 55 for d in draws)
    assert not {50, 48, 52} & set(draws)
    assert len(set(draws)) == 8  # every other item of the window turns up


def test_uniform_negatives_avoid_seen_items() -> None:
    sampler = NegativeSampler(np.ones(20), window=3, rng=np.random.default_rng(1))
    seen = set(range(18))
    assert {sampler.uniform(seen) for _ in range(100)} == {18, 19}
    many = sampler.uniform_many(2, seen)
    assert sorted(many) == [18, 19]


def test_exhausted_catalogue_is_an_error() -> None:
    sampler = NegativeSampler(np.ones(3), window=1, rng=np.random.default_rng(2))
    with pytest.raises(LEError, match="seen them all"):
        sampler.uniform({0, 1, 2})
    with pytest.raises(LEError, match="at least 2 items"):
        NegativeSampler(np.ones(1), window=1, rng=np.random.default_rng(0))
