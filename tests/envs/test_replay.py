"""Real held-out sequences replayed through a world, and the similarity check behind the
quit-rule calibration."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from billp.envs.quit_rule import QuitRule
from billp.envs.replay import heldout_sequence, replay_user, similarity_acceptance
from billp.envs.similarity import genre_jaccard


class ConstantModel:
    name = "constant"

    def __init__(self, value: float) -> None:
        self.value = value

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        return self.value

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        return np.full(len(items), self.value, dtype=np.float32)


def _user_with_heldout(dataset) -> int:  # type: ignore[no-untyped-def]
    counts = np.bincount(dataset.heldout_interactions.users, minlength=dataset.n_users)
    return int(np.argmax(counts))


def test_replay_judges_every_real_item_in_order(toy_dataset) -> None:  # type: ignore[no-untyped-def]
    user = _user_with_heldout(toy_dataset)
    items, ratings = heldout_sequence(toy_dataset, user, 50)
    assert len(items) >= 2
    genres = toy_dataset.catalogue.genre_sets
    rule = QuitRule(genres, window=1, reward_threshold=2.0, similarity_threshold=0.5)
    happy = replay_user(toy_dataset, ConstantModel(4.0), rule, user, 50)
    assert happy.items == items and happy.ratings == ratings
    assert happy.rewards == [4.0] * len(items)
    # With a window of 1 the verdict depends only on the previous real item.
    expected = ["accepted"] + [
        "too_similar" if genre_jaccard(genres[b], genres[a]) >= 0.5 else "accepted"
        for a, b in itertools.pairwise(items)
    ]
    assert happy.verdicts == expected
    first_quit = next((k + 1 for k, v in enumerate(expected) if v != "accepted"), len(items))
    assert happy.survival == first_quit
    # A world that hates everything rejects every item that is not too similar for low reward.
    sad = replay_user(toy_dataset, ConstantModel(1.0), rule, user, 50)
    assert sad.verdicts[0] == "low_reward" and sad.survival == 1
    assert all(v in ("low_reward", "too_similar") for v in sad.verdicts)


def test_similarity_acceptance_matches_the_quit_rule(toy_dataset) -> None:  # type: ignore[no-untyped-def]
    users = list(range(toy_dataset.n_users))
    genres = toy_dataset.catalogue.genre_sets
    for window, threshold in ((1, 1.0), (2, 0.5), (3, 0.34)):
        rule = QuitRule(genres, window=window, reward_threshold=0.0, similarity_threshold=threshold)
        accepted, judged = similarity_acceptance(toy_dataset, users, window, threshold, 20)
        replays = [replay_user(toy_dataset, ConstantModel(3.0), rule, u, 20) for u in users]
        verdicts = [v for r in replays for v in r.verdicts[1:]]
        assert judged == len(verdicts)
        assert accepted == sum(v == "accepted" for v in verdicts)
