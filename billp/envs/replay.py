"""Replay real held-out behaviour through a world: does the simulated user accept what real
users did next?

Each user's held-out items (the ratings the models never saw), in their real order, are
recommended one after the other from the user's starting history, as an episode would. At each
step the world gives its reward and the quit rule its verdict; the replay goes on after a
"quit" so that every real next item is judged (``accepted``), and records how far the real
sequence got before the first quit (``survival``). A faithful world lets most real behaviour
through.

The similarity part of the quit rule needs no reward, so :func:`similarity_acceptance` measures
it for any (window, threshold) without a world: that is how the rule is calibrated (on train
users only; see ``eval/quit_calibration.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from billp.data.dataset import Dataset
from billp.envs.quit_rule import QuitRule
from billp.envs.similarity import genre_jaccard
from billp.envs.user_model import UserModel


class ReplayedUser(BaseModel):
    """One user's real held-out sequence as the world saw it."""

    user: int
    items: list[int]
    ratings: list[float]
    """The user's real ratings."""
    rewards: list[float]
    """The world's rewards."""
    verdicts: list[str]
    """Per item: "accepted" or the quit reason the rule gave."""

    @property
    def survival(self) -> int:
        """Real items consumed before the first quit (the quitting item counts, as in an
        episode); the whole sequence when none quits."""
        for step, verdict in enumerate(self.verdicts):
            if verdict != "accepted":
                return step + 1
        return len(self.verdicts)


def heldout_sequence(dataset: Dataset, user: int, max_items: int) -> tuple[list[int], list[float]]:
    """The user's first ``max_items`` held-out items and ratings, in their real order."""
    heldout = dataset.heldout_interactions
    mask = heldout.users == user
    items = [int(i) for i in heldout.items[mask][:max_items]]
    ratings = [float(r) for r in heldout.ratings[mask][:max_items]]
    return items, ratings


def replay_user(
    dataset: Dataset, model: UserModel, rule: QuitRule, user: int, max_items: int
) -> ReplayedUser:
    """Recommend the user's real held-out items in order and record the world's verdicts."""
    items, ratings = heldout_sequence(dataset, user, max_items)
    history = list(dataset.starting_history(user))
    rewards: list[float] = []
    verdicts: list[str] = []
    for step, item in enumerate(items):
        reward = float(model.reward(user, history, item))
        decision = rule.decide(item, reward, items[:step])
        rewards.append(reward)
        verdicts.append("accepted" if not decision.quit else str(decision.reason))
        history.append(item)
    return ReplayedUser(user=user, items=items, ratings=ratings, rewards=rewards, verdicts=verdicts)


def similarity_acceptance(
    dataset: Dataset, users: Sequence[int], window: int, threshold: float, max_items: int
) -> tuple[int, int]:
    """(accepted, judged): real next items that pass the too-similar check of a rule with this
    window and genre-Jaccard threshold (the first held-out item has nothing to compare with
    and is not judged)."""
    genres = dataset.catalogue.genre_sets
    accepted = judged = 0
    for user in users:
        items, _ = heldout_sequence(dataset, int(user), max_items)
        for step in range(1, len(items)):
            recent = items[max(step - window, 0) : step]
            judged += 1
            accepted += not any(
                item == items[step] or genre_jaccard(genres[items[step]], genres[item]) >= threshold
                for item in recent
            )
    return accepted, judged
