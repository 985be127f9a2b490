"""The logged buffer of the offline baselines: observations, rewards and the quit rule."""

from __future__ import annotations

import numpy as np

from billp.data import Dataset
from billp.envs import QuitRule
from billp.rl.transitions import build_transitions
from billp.rl.ts_train import logged_episodes, to_buffer

K = 3


def test_observations_match_the_env_layout_and_the_log_end_is_truncated(
    toy_dataset: Dataset,
) -> None:
    user = toy_dataset.split.train_users[0]
    transitions = build_transitions(toy_dataset, [user], max_per_user=None)
    rewards = np.full(len(transitions), 4.0, dtype=np.float32)
    episodes = logged_episodes(transitions, rewards, K, quit_rule=None)
    log = toy_dataset.user_log(user).items
    # The first transition sees one item, left-padded with item 0 and mask 0.
    assert episodes.obs["history"][0].tolist() == [0, 0, int(log[0])]
    assert episodes.obs["history_mask"][0].tolist() == [0, 0, 1]
    assert episodes.obs_next["history"][0].tolist() == [0, int(log[0]), int(log[1])]
    assert episodes.obs["history"][4].tolist() == log[2:5].tolist()
    assert not episodes.terminated.any()
    assert episodes.truncated.tolist() == [False] * (len(transitions) - 1) + [True]
    buffer = to_buffer(episodes)
    assert len(buffer) == len(transitions)
    assert buffer.done.sum() == 1 and buffer.act.tolist() == log[1:].tolist()


def test_the_quit_rule_cuts_the_log_into_episodes(toy_dataset: Dataset) -> None:
    user = toy_dataset.split.train_users[0]
    transitions = build_transitions(toy_dataset, [user], max_per_user=5)
    genres = [frozenset({f"g{i}"}) for i in range(len(toy_dataset.catalogue))]
    rule = QuitRule(genres, window=2, reward_threshold=2.0, similarity_threshold=1.0)
    rewards = np.array([3.0, 1.0, 3.0, 3.0, 3.0], dtype=np.float32)
    episodes = logged_episodes(transitions, rewards, K, quit_rule=rule)
    # Distinct genres everywhere: only the low reward (1 < 2) ends an episode.
    assert episodes.terminated.tolist() == [False, True, False, False, False]
    assert episodes.truncated.tolist() == [False, False, False, False, True]
    same = [frozenset({"Drama"})] * len(toy_dataset.catalogue)
    rule_same = QuitRule(same, window=2, reward_threshold=0.0, similarity_threshold=1.0)
    episodes = logged_episodes(transitions, np.full(5, 3.0, np.float32), K, quit_rule=rule_same)
    # Identical genre sets: the second item of every episode is "too similar" to the first.
    assert episodes.terminated.tolist() == [False, True, False, True, False]
    assert episodes.truncated.tolist() == [False, False, False, False, True]
