"""LE features of logged transitions: the state chain, proposed positives and the disk cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from billp.common.numerics import numeric_environment
from billp.data import Dataset
from billp.rl.feature_cache import FeatureCacheError
from billp.rl.features import NO_ITEM, compute_features, load_or_compute_features, propose
from billp.rl.le_models import RandomVectorLE
from billp.rl.transitions import build_transitions


def test_propose_takes_the_best_rewarded_with_ties_to_the_lower_id() -> None:
    pool = np.array([7, 3, 5, 9])
    rewards = np.array([2.0, 4.0, 4.0, 1.0], dtype=np.float32)
    items, item_rewards, where = propose(pool, rewards, 3)
    assert items.tolist() == [3, 5, 7]
    assert item_rewards.tolist() == [4.0, 4.0, 2.0]
    assert where.tolist() == [1, 2, 0]


def test_propose_leaves_slots_empty_when_the_pool_is_short() -> None:
    items, item_rewards, where = propose(np.array([4]), np.array([3.0], np.float32), 2)
    assert items.tolist() == [4, NO_ITEM]
    assert item_rewards.tolist() == [3.0, 0.0]
    assert where.tolist() == [0, -1]


@pytest.fixture(scope="module")
def fake(toy_dataset: Dataset) -> RandomVectorLE:
    return RandomVectorLE(len(toy_dataset.catalogue), dim=6, seed=1)


def test_features_match_direct_le_queries(toy_dataset: Dataset, fake: RandomVectorLE) -> None:
    users = toy_dataset.split.train_users[:2]
    transitions = build_transitions(toy_dataset, users, max_per_user=3)
    features = compute_features(transitions, fake, n_augmented=2, candidate_pool=6)
    for row in range(len(transitions)):
        prefix = transitions.prefix(row)
        action = int(transitions.actions[row])
        np.testing.assert_allclose(features.state[row], fake.state(0, prefix), atol=1e-6)
        np.testing.assert_allclose(
            features.next_state[row], fake.state(0, [*prefix, action]), atol=1e-6
        )
        assert features.reward[row] == pytest.approx(fake.reward(0, prefix, action))
        seen = set(transitions.seen(int(transitions.users[row])).tolist())
        proposed = features.aug_items[row].tolist()
        assert not seen & set(proposed), "a proposed positive was already in the user's log"
        pool = fake.nearest(features.state[row], 6, transitions.seen(int(transitions.users[row])))
        best = sorted(pool.tolist(), key=lambda i: (-fake.reward(0, prefix, i), i))[:2]
        assert proposed == best
        for slot, item in enumerate(proposed):
            assert features.aug_reward[row, slot] == pytest.approx(fake.reward(0, prefix, item))
            np.testing.assert_allclose(
                features.aug_next_state[row, slot], fake.state(0, [*prefix, item]), atol=1e-6
            )


def test_features_are_cached_and_a_damaged_cache_is_reported(
    toy_dataset: Dataset, fake: RandomVectorLE, tmp_path: Path
) -> None:
    transitions = build_transitions(toy_dataset, toy_dataset.split.train_users[:2], 3)
    first = load_or_compute_features(transitions, fake, 2, 6, tmp_path, "fp", progress=False)
    files = sorted(tmp_path.glob("*.safetensors"))
    assert len(files) == 1 and files[0].with_suffix(".json").is_file()
    # A cache computed under another SIMD level or torch version is never read.
    recorded = json.loads(files[0].with_suffix(".json").read_text())["numeric_environment"]
    assert recorded == numeric_environment()
    again = load_or_compute_features(transitions, fake, 2, 6, tmp_path, "fp", progress=False)
    for name, array in first.arrays().items():
        np.testing.assert_array_equal(array, again.arrays()[name])
    files[0].write_bytes(b"not a safetensors file")
    with pytest.raises(FeatureCacheError, match="delete it to recompute"):
        load_or_compute_features(transitions, fake, 2, 6, tmp_path, "fp", progress=False)
