"""Bootstrap intervals: coverage on synthetic data, seed levels, paired tests."""

from __future__ import annotations

import numpy as np
import pytest

from billp.evaluation.bootstrap import (
    bootstrap,
    episode_weights,
    hierarchical_weights,
    make_rng,
    paired_comparison,
)
from billp.evaluation.metrics import METRIC_BY_NAME, EpisodeTable, ItemFeatures, statistic_for
from tests.evaluation.conftest import make_episode

REPETITIONS = 300
EPISODES = 50
RESAMPLES = 1000
COVERAGE_RANGE = (0.90, 0.985)
"""95 % nominal; 300 repetitions give a standard error of ~1.3 points (and the
percentile bootstrap runs slightly short at n = 50)."""
TRUE_LEN = 4.0  # 1 + Poisson(3)
TRUE_R_EACH = 3.0  # rewards ~ U(1, 5), independent of the length
TRUE_R_TRAJ = TRUE_LEN * TRUE_R_EACH


def capped_episodes(rng: np.random.Generator, n: int, shift: float = 0.0) -> list:
    """Episodes cut by the cap (so Len = steps) with random lengths and rewards."""
    out = []
    for i in range(n):
        steps = 1 + int(rng.poisson(TRUE_LEN - 1))
        rewards = (rng.uniform(1.0, 5.0, size=steps) + shift).tolist()
        out.append(
            make_episode(f"e{i}", [0] * steps, rewards, terminated=False, truncated=True, user_id=i)
        )
    return out


@pytest.fixture()
def one_item() -> ItemFeatures:
    return ItemFeatures.from_genre_sets([{"A"}], [1])


def test_percentile_intervals_cover_the_truth(one_item: ItemFeatures) -> None:
    rng = np.random.default_rng(12345)
    truth = {"len": TRUE_LEN, "r_each": TRUE_R_EACH, "r_traj": TRUE_R_TRAJ}
    hits = dict.fromkeys(truth, 0)
    for _ in range(REPETITIONS):
        table = EpisodeTable(capped_episodes(rng, EPISODES), one_item)
        weights = episode_weights(EPISODES, RESAMPLES, rng)
        for name, value in truth.items():
            iv = bootstrap(statistic_for(table, METRIC_BY_NAME[name]), weights, EPISODES)
            hits[name] += iv.low <= value <= iv.high
    for name, count in hits.items():
        coverage = count / REPETITIONS
        assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], (name, coverage)


def test_same_seed_same_interval(one_item: ItemFeatures) -> None:
    table = EpisodeTable(capped_episodes(np.random.default_rng(0), 30), one_item)
    stat = statistic_for(table, METRIC_BY_NAME["r_traj"])
    a = bootstrap(stat, episode_weights(30, 200, make_rng(7)), 30)
    b = bootstrap(stat, episode_weights(30, 200, make_rng(7)), 30)
    assert a == b


def test_hierarchical_weights_resample_runs_then_episodes() -> None:
    weights = hierarchical_weights([3, 5], 400, make_rng(0))
    assert weights.shape == (400, 8)
    run_a, run_b = weights[:, :3].sum(axis=1), weights[:, 3:].sum(axis=1)
    # each run is drawn 0, 1 or 2 times, each time with all its episodes
    assert set(np.unique(run_a)) <= {0.0, 3.0, 6.0}
    assert set(np.unique(run_b)) <= {0.0, 5.0, 10.0}
    assert np.all((run_a / 3 + run_b / 5) == 2)
    assert {0.0, 6.0} <= set(np.unique(run_a))  # both extremes occur


def test_seed_level_interval_carries_between_seed_spread(one_item: ItemFeatures) -> None:
    rng = np.random.default_rng(3)
    # Three "seeds" whose rewards differ systematically: the seed-level interval must be
    # wider than the interval that treats all episodes as one sample.
    runs = [capped_episodes(rng, 40, shift=s) for s in (-1.0, 0.0, 1.0)]
    episodes = [e for run in runs for e in run]
    table = EpisodeTable(episodes, one_item)
    stat = statistic_for(table, METRIC_BY_NAME["r_each"])
    pooled = bootstrap(stat, episode_weights(len(episodes), 1000, make_rng(0)), len(episodes))
    seeds = bootstrap(stat, hierarchical_weights([40, 40, 40], 1000, make_rng(0)), 3)
    assert seeds.mean == pooled.mean
    assert (seeds.high - seeds.low) > 2 * (pooled.high - pooled.low)


def test_coverage_interval_is_recentred(one_item: ItemFeatures) -> None:
    features = ItemFeatures.from_genre_sets([{"A"}] * 200, [1] * 200)
    rng = np.random.default_rng(0)
    episodes = [
        make_episode(
            f"e{i}",
            rng.choice(200, size=3, replace=False).tolist(),
            [3.0] * 3,
            terminated=False,
            truncated=True,
        )
        for i in range(30)
    ]
    table = EpisodeTable(episodes, features)
    stat = statistic_for(table, METRIC_BY_NAME["coverage"])
    weights = episode_weights(30, 1000, make_rng(0))
    plain_high = np.percentile(stat(weights), 97.5)
    iv = bootstrap(stat, weights, 30, set_statistic=True)
    assert plain_high < iv.mean  # the plain percentile interval would miss the estimate
    assert iv.low <= iv.mean <= iv.high


def _joint(a: list, b: list, features: ItemFeatures, name: str):
    return statistic_for(EpisodeTable(a + b, features), METRIC_BY_NAME[name])


def test_paired_identical_runs(one_item: ItemFeatures) -> None:
    eps = capped_episodes(np.random.default_rng(1), 25)
    result = paired_comparison(
        _joint(eps, eps, one_item, "r_traj"), 25, resamples=300, permutations=300
    )
    assert result.difference.mean == pytest.approx(0.0, abs=1e-9)
    assert result.difference.low == pytest.approx(0.0, abs=1e-9)
    assert result.difference.high == pytest.approx(0.0, abs=1e-9)
    assert result.p_value == 1.0


def test_paired_shift_is_detected(one_item: ItemFeatures) -> None:
    rng = np.random.default_rng(2)
    a = capped_episodes(rng, 30)
    b = [
        e.model_copy(
            update={
                "rewards": [r + 0.5 for r in e.rewards],
                "total_reward": e.total_reward + 0.5 * e.length,
            }
        )
        for e in a
    ]
    result = paired_comparison(
        _joint(a, b, one_item, "r_each"), 30, resamples=500, permutations=500
    )
    assert result.difference.mean == pytest.approx(0.5)
    assert result.difference.low == pytest.approx(0.5) and result.difference.high == pytest.approx(
        0.5
    )
    assert result.p_value == pytest.approx(1 / 501)


def test_paired_permutation_p_values_are_calibrated(one_item: ItemFeatures) -> None:
    rng = np.random.default_rng(4)
    rejections = 0
    repetitions = 150
    for r in range(repetitions):
        a, b = capped_episodes(rng, 20), capped_episodes(rng, 20)
        result = paired_comparison(
            _joint(a, b, one_item, "r_traj"), 20, resamples=50, permutations=300, seed=r
        )
        rejections += result.p_value < 0.05
    assert rejections / repetitions <= 0.10  # nominal 5 %


def test_no_pairs() -> None:
    result = paired_comparison(lambda w: np.zeros(w.shape[0]), 0)
    assert result.pairs == 0 and result.as_dict()["p_value"] is None
