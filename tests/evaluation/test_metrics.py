"""Metrics on hand-built trajectories whose answers are worked out by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from billp.envs.similarity import genre_jaccard
from billp.evaluation.bootstrap import episode_weights, make_rng
from billp.evaluation.metrics import (
    METRIC_BY_NAME,
    METRICS,
    NO_GENRE,
    EpisodeTable,
    ItemFeatures,
    compute_metrics,
    genre_entropy,
    mean_pairwise_distance,
    statistic_for,
)
from billp.summary.episodes import shared_metrics, summarize
from tests.evaluation.conftest import make_episode

# Items (see the `features` fixture): 0 {A}, 1 {B}, 2 {A,B}, 3 {C}, 4 {}, 5 {A};
# popularity 10, 20, ..., 60 (all distinct, so item i has percentile 100 * (i + 0.5) / 6).


def three_episodes() -> list:
    return [
        # Quits on its first step (low reward): Len 0, R_traj 0.
        make_episode("test-0000", [3], [1.5], terminated=True, quit_reason="low_reward"),
        # Cut by a cap of 3: Len 3, R_traj 12.
        make_episode("test-0001", [0, 1, 2], [4.0, 3.0, 5.0], terminated=False, truncated=True),
        # Repeats item 0 on step 3: Len 2, R_traj 6.
        make_episode(
            "test-0002", [0, 5, 0], [4.0, 2.0, 1.0], terminated=True, quit_reason="repeat"
        ),
    ]


def point(table: EpisodeTable) -> dict[str, float]:
    weights = episode_weights(len(table), 10, make_rng(0))
    return {name: iv.mean for name, iv in compute_metrics(table, weights, len(table)).items()}


def test_paper_metrics_of_quit_and_capped_episodes(features: ItemFeatures) -> None:
    m = point(EpisodeTable(three_episodes(), features))
    assert m["len"] == pytest.approx(5 / 3)
    assert m["r_traj"] == pytest.approx(6.0)
    assert m["r_each"] == pytest.approx(18 / 5)  # sum(R_traj) / sum(Len), not a mean of ratios
    assert m["quit_share"] == pytest.approx(2 / 3)
    assert m["capped_share"] == pytest.approx(1 / 3)
    assert m["quit_low_reward"] == pytest.approx(1 / 3)
    assert m["quit_repeat"] == pytest.approx(1 / 3)
    assert m["quit_too_similar"] == 0.0


def test_beyond_paper_metrics(features: ItemFeatures) -> None:
    m = point(EpisodeTable(three_episodes(), features))
    assert m["coverage"] == pytest.approx(5 / 6)  # items 0, 1, 2, 3, 5
    # entropies 0 ({C}), 1 bit (A 1.5, B 1.5), 0 (A only)
    assert m["genre_entropy"] == pytest.approx(1 / 3)
    # distances: single-item episode undefined; (1 + 0.5 + 0.5) / 3; all {A} -> 0
    assert m["item_distance"] == pytest.approx((2 / 3 + 0.0) / 2)
    pct = [100 * 3.5 / 6, 100 * (0.5 + 1.5 + 2.5) / 18, 100 * (0.5 + 5.5 + 0.5) / 18]
    assert m["popularity_percentile"] == pytest.approx(sum(pct) / 3)
    info = -np.log2((np.arange(10, 70, 10) + 1) / (210 + 6))
    novelty = [info[3], info[[0, 1, 2]].mean(), info[[0, 5, 0]].mean()]
    assert m["novelty"] == pytest.approx(sum(novelty) / 3)


def test_single_step_quit_alone(features: ItemFeatures) -> None:
    table = EpisodeTable([three_episodes()[0]], features)
    m = point(table)
    assert m["len"] == 0.0 and m["r_traj"] == 0.0
    assert math.isnan(m["r_each"])  # no accepted step at all
    assert math.isnan(m["item_distance"])  # fewer than two items
    assert m["genre_entropy"] == 0.0
    assert table.durations.tolist() == [1] and table.events.tolist() == [True]


def test_capped_episode_is_censored_at_the_cap(features: ItemFeatures) -> None:
    capped = make_episode("c", [0, 1, 3, 2], [3.0] * 4, terminated=False, truncated=True)
    table = EpisodeTable([capped], features)
    assert table.durations.tolist() == [4] and table.events.tolist() == [False]
    m = point(table)
    assert m["len"] == 4 and m["r_each"] == pytest.approx(3.0) and m["capped_share"] == 1.0


def test_quit_on_the_cap_step_counts_as_quit(features: ItemFeatures) -> None:
    # TimeLimit reports truncated=True too when the user quits on the last step.
    both = make_episode(
        "q", [0, 1], [3.0, 1.0], terminated=True, truncated=True, quit_reason="low_reward"
    )
    m = point(EpisodeTable([both], features))
    assert m["quit_share"] == 1.0 and m["capped_share"] == 0.0 and m["len"] == 1


def test_no_episodes_gives_undefined_metrics_not_errors(features: ItemFeatures) -> None:
    table = EpisodeTable([], features)
    metrics = compute_metrics(table, episode_weights(0, 5, make_rng(0)), 0)
    assert set(metrics) == {m.name for m in METRICS}
    for interval in metrics.values():
        assert interval.n == 0
        assert interval.as_dict()["ci_low"] is None


def test_zero_step_episode(features: ItemFeatures) -> None:
    empty = make_episode("e", [], [], terminated=False, truncated=True)
    table = EpisodeTable([empty, three_episodes()[1]], features)
    m = point(table)
    assert m["len"] == pytest.approx(1.5)
    assert m["genre_entropy"] == pytest.approx(1.0)  # the empty episode is left out
    assert m["coverage"] == pytest.approx(3 / 6)


def test_unknown_item_names_the_episode(features: ItemFeatures) -> None:
    bad = make_episode("test-0042", [0, 99], [3.0, 3.0], terminated=False, truncated=True)
    with pytest.raises(ValueError, match=r"episode test-0042: item id 99 .* catalogue of 6"):
        EpisodeTable([bad], features)


def test_genre_entropy_spreads_an_item_over_its_genres(features: ItemFeatures) -> None:
    assert genre_entropy([2], features) == pytest.approx(1.0)  # {A, B}
    assert genre_entropy([0, 1], features) == pytest.approx(1.0)
    assert genre_entropy([0, 1, 3, 4], features) == pytest.approx(2.0)  # 4 equal genres
    assert math.isnan(genre_entropy([], features))


def test_pairwise_distance_matches_the_quit_rule_similarity() -> None:
    sets = [frozenset(s) for s in ({"A"}, {"B"}, {"A", "B"}, set(), {"A", "C", "D"}, set())]
    features = ItemFeatures.from_genre_sets(sets, [1] * len(sets))
    assert NO_GENRE in features.genres
    rng = np.random.default_rng(0)
    for _ in range(50):
        items = [int(i) for i in rng.integers(0, len(sets), size=rng.integers(2, 7))]
        expected = np.mean(
            [1 - genre_jaccard(sets[a], sets[b]) for a, b in itertools.combinations(items, 2)]
        )
        assert mean_pairwise_distance(items, features) == pytest.approx(expected)


def test_popularity_percentile_is_mid_rank() -> None:
    features = ItemFeatures.from_genre_sets([{"A"}] * 4, [10, 20, 20, 30])
    assert features.popularity_percentile().tolist() == [12.5, 50.0, 50.0, 87.5]
    # A uniform recommender's mean percentile is exactly 50.
    assert features.popularity_percentile().mean() == 50.0


def test_summary_json_and_evaluation_share_one_definition(features: ItemFeatures) -> None:
    episodes = three_episodes()
    table = EpisodeTable(episodes, features)
    shared = shared_metrics(episodes, features.n_items)
    weights = episode_weights(len(episodes), 50, make_rng(0))
    for name, stat in shared.items():
        assert statistic_for(table, METRIC_BY_NAME[name]) is table.shared[name]
        np.testing.assert_array_equal(table.shared[name](weights), stat(weights), err_msg=name)
    assert summarize(episodes, n_items=features.n_items) == {
        "episodes": 3,
        "len": round(5 / 3, 6),
        "r_each": 3.6,
        "r_traj": 6.0,
        "coverage": round(5 / 6, 6),
        "quit_share": round(2 / 3, 6),
        "capped_share": round(1 / 3, 6),
        "fallbacks": 0,
    }
    # What the evaluation leaves undefined (nan), summary.json writes as 0.0.
    assert summarize(episodes[:1], n_items=features.n_items)["r_each"] == 0.0
    assert summarize([], n_items=features.n_items) == {
        "episodes": 0,
        "len": 0.0,
        "r_each": 0.0,
        "r_traj": 0.0,
        "coverage": 0.0,
    }


def test_intervals_contain_the_estimate(features: ItemFeatures) -> None:
    episodes = [
        make_episode(
            f"e{i}",
            [i % 6, (i + 1) % 6, (i + 3) % 6],
            [3.0, 4.0, 2.0 + i % 3],
            terminated=bool(i % 2),
            truncated=not i % 2,
            quit_reason="low_reward",
        )
        for i in range(20)
    ]
    table = EpisodeTable(episodes, features)
    metrics = compute_metrics(table, episode_weights(len(table), 500, make_rng(1)), len(table))
    for name, iv in metrics.items():
        if math.isfinite(iv.low):
            assert iv.low <= iv.mean + 1e-9 and iv.mean <= iv.high + 1e-9, name
