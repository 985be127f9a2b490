"""Non-LLM reference policies behind the same protocol as BiLLP.

- ``random``: a uniformly random unseen item.
- ``popularity``: the most popular unseen item of the training log.
- ``greedy``: the myopic argmax of the simulator's own reward model (an oracle that
  knows the user model; an upper bound on R_each, not on trajectory length).
- ``greedy-diverse``: the same argmax restricted to items the quit rule would accept
  on repeat and similarity grounds (another oracle: it knows the quit rule too, so it
  only loses a user to a low reward when no acceptable item scores above the threshold).

Every policy skips items the user has seen or been recommended in this episode. Ties
go to the lowest item id. Each step's trace holds the choice, the policy's score of it
(``predicted_reward`` or ``popularity``) and the next best candidates as ``shortlist``,
so the report can show why an item was picked.

Each has a ``build_*`` function, its builder in :mod:`billp.policy_registry`.

Greedy policies score the whole catalogue each step through ``UserModel.rewards``; that
is cheap for the matrix simulator, but a user model that is itself an LLM pays for every
item scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from billp.data import Catalogue
from billp.envs import GenreJaccard, QuitRule, UserModel
from billp.policy import Decision, MemorylessEpisode, RankedTrace, ScoredChoice, decide
from billp.policy.build import PolicyInputs

TRACE_SHORTLIST = 10
"""Best-scored candidates recorded in each step's trace."""


class _BaselineEpisode(MemorylessEpisode):
    """An episode of a baseline: picks among the items the user has not seen."""

    def __init__(self, policy: _BaselinePolicy, seed: int) -> None:
        super().__init__()
        self.policy = policy
        self.rng = np.random.default_rng(seed)

    def _unseen(self) -> np.ndarray:
        mask = np.ones(len(self.policy.catalogue), dtype=bool)
        mask[self.history] = False
        mask[self.recommended] = False
        if not mask.any():
            raise RuntimeError(
                f"user {self.user_id}: no unseen catalogue item is left to recommend"
            )
        return mask

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> Decision:
        return decide(self.policy.choose(self, self._unseen()))


def _ranked(scores: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    """The ``k`` best allowed items, best first, ties to the lowest id."""
    candidates = np.flatnonzero(allowed)
    order = np.lexsort((candidates, -scores[candidates]))
    return [int(i) for i in candidates[order[:k]]]


class _BaselinePolicy:
    """Base of the memoryless policies (no memories: nothing to commit or reload)."""

    name = "baseline"

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> RankedTrace:
        """This step's trace, whose choice is the item to recommend."""
        raise NotImplementedError

    def spawn(self, episode_key: str, seed: int) -> _BaselineEpisode:
        return _BaselineEpisode(self, seed)


class RandomPolicy(_BaselinePolicy):
    name = "random"

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> RankedTrace:
        item = int(episode.rng.choice(np.flatnonzero(unseen)))
        return RankedTrace(choice=ScoredChoice(item_id=item))


class PopularityPolicy(_BaselinePolicy):
    name = "popularity"

    def __init__(self, catalogue: Catalogue, popularity: np.ndarray) -> None:
        super().__init__(catalogue)
        self.popularity = np.asarray(popularity)
        if self.popularity.shape != (len(catalogue),):
            raise ValueError(
                f"popularity has {self.popularity.size} entries for {len(catalogue)} items"
            )
        self._order = np.argsort(-self.popularity, kind="stable")

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> RankedTrace:
        ranked = self._order[unseen[self._order]][:TRACE_SHORTLIST]
        item = int(ranked[0])
        return RankedTrace(
            choice=ScoredChoice(item_id=item, popularity=int(self.popularity[item])),
            shortlist=[int(i) for i in ranked],
        )


class GreedyPolicy(_BaselinePolicy):
    name = "greedy"

    def __init__(self, catalogue: Catalogue, user_model: UserModel) -> None:
        super().__init__(catalogue)
        self.user_model = user_model
        self._all = np.arange(len(catalogue))

    def _scores(self, episode: _BaselineEpisode) -> np.ndarray:
        return np.asarray(
            self.user_model.rewards(
                episode.user_id,
                episode.history + episode.recommended,
                cast(Sequence[int], self._all),
            ),
            dtype=np.float64,
        )

    def _pick(self, scores: np.ndarray, allowed: np.ndarray) -> RankedTrace:
        ranked = _ranked(scores, allowed, TRACE_SHORTLIST)
        item = ranked[0]
        return RankedTrace(
            choice=ScoredChoice(item_id=item, predicted_reward=round(float(scores[item]), 6)),
            shortlist=ranked,
        )

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> RankedTrace:
        return self._pick(self._scores(episode), unseen)


class GreedyDiversePolicy(GreedyPolicy):
    name = "greedy-diverse"

    def __init__(self, catalogue: Catalogue, user_model: UserModel, quit_rule: QuitRule) -> None:
        super().__init__(catalogue, user_model)
        if quit_rule.n_items != len(catalogue):
            raise ValueError(
                f"the quit rule knows {quit_rule.n_items} items, the catalogue has {len(catalogue)}"
            )
        self.quit_rule = quit_rule
        self._jaccard = GenreJaccard(quit_rule.genre_sets)

    def acceptable(self, recent: Sequence[int], unseen: np.ndarray) -> np.ndarray:
        """Unseen items the quit rule accepts after ``recent`` whatever their reward."""
        window = [int(r) for r in recent[max(len(recent) - self.quit_rule.window, 0) :]]
        ok = unseen.copy()
        if not window:
            return ok
        ok[window] = False
        jaccard = self._jaccard.to(window)
        ok &= ~(jaccard >= self.quit_rule.similarity_threshold).any(axis=1)
        return ok

    def choose(self, episode: _BaselineEpisode, unseen: np.ndarray) -> RankedTrace:
        ok = self.acceptable(episode.recommended, unseen)
        pool = ok if ok.any() else unseen
        picked = self._pick(self._scores(episode), pool)
        item = picked.choice.item_id
        decision = self.quit_rule.decide(item, float("inf"), episode.recommended)
        if ok.any() and decision.quit:
            raise RuntimeError(
                f"greedy-diverse: item {item} passed the vectorised check but the quit rule "
                f"rejects it ({decision.reason}, similar to {decision.similar_to})"
            )
        return RankedTrace(
            choice=picked.choice,
            shortlist=picked.shortlist,
            excluded_by_quit_rule=int(unseen.sum() - ok.sum()),
            no_safe_item=not ok.any(),
        )


def build_random(inputs: PolicyInputs) -> RandomPolicy:
    """``random`` over the world's catalogue."""
    return RandomPolicy(inputs.world.dataset.catalogue)


def build_popularity(inputs: PolicyInputs) -> PopularityPolicy:
    """``popularity`` by the item counts of the world's training log."""
    dataset = inputs.world.dataset
    return PopularityPolicy(dataset.catalogue, dataset.item_popularity)


def build_greedy(inputs: PolicyInputs) -> GreedyPolicy:
    """``greedy`` on the world's own user model."""
    return GreedyPolicy(inputs.world.dataset.catalogue, inputs.world.user_model)


def build_greedy_diverse(inputs: PolicyInputs) -> GreedyDiversePolicy:
    """``greedy-diverse`` on the world's user model and quit rule."""
    world = inputs.world
    return GreedyDiversePolicy(world.dataset.catalogue, world.user_model, world.quit_rule)
