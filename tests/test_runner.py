"""plan_episodes: which users a run plays, and the test-user offset that seeds use."""

from __future__ import annotations

import pytest

from billp.config import RunConfig
from billp.runner import derive_seed, plan_episodes

TRAIN = [3, 5, 8, 13]
TEST = [100, 101, 102, 103, 104, 105, 106]


def test_default_plays_the_first_train_then_the_first_test_users() -> None:
    config = RunConfig(seed=4, train_users=2, test_users=3)
    specs = plan_episodes(config, TRAIN, TEST)
    assert [(s.phase, s.index, s.user_id) for s in specs] == [
        ("train", 0, 3),
        ("train", 1, 5),
        ("test", 0, 100),
        ("test", 1, 101),
        ("test", 2, 102),
    ]
    assert [s.key for s in specs][2:] == ["test-0000", "test-0001", "test-0002"]
    assert specs[2].seed == derive_seed(4, "test", 0, 100)


def test_offset_moves_only_the_test_users_and_keeps_keys_and_seed_rule() -> None:
    base = plan_episodes(RunConfig(seed=4, train_users=2, test_users=3), TRAIN, TEST)
    shifted = plan_episodes(
        RunConfig(seed=4, train_users=2, test_users=3, test_user_offset=3), TRAIN, TEST
    )
    assert shifted[:2] == base[:2]  # train users do not move
    test = [s for s in shifted if s.phase == "test"]
    assert [s.user_id for s in test] == [103, 104, 105]
    assert [(s.key, s.index) for s in test] == [
        ("test-0000", 0),
        ("test-0001", 1),
        ("test-0002", 2),
    ]
    assert test[0].seed == derive_seed(4, "test", 0, 103)
    assert not {s.user_id for s in test} & {s.user_id for s in base if s.phase == "test"}


def test_offset_past_the_split_is_refused_with_both_numbers() -> None:
    config = RunConfig(train_users=0, test_users=3, test_user_offset=5)
    with pytest.raises(ValueError, match=r"test_users=3 from test_user_offset=5 .* only 7 test"):
        plan_episodes(config, TRAIN, TEST)
    assert len(plan_episodes(config.model_copy(update={"test_user_offset": 4}), TRAIN, TEST)) == 3


def test_too_many_train_users_is_refused() -> None:
    with pytest.raises(ValueError, match="only 4 train users"):
        plan_episodes(RunConfig(train_users=5, test_users=0), TRAIN, TEST)
