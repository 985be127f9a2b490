"""The Actor's shortlist: real catalogue candidates drawn from the plan, hints and memory.

The Actor never invents items: it picks an id from this list, and structured decoding
only admits these ids. The list is composed in priority order and never contains an
item the user has already seen or been recommended in this episode.

1. items the actor memory encourages in similar states;
2. the best items of the plan's genres;
3. the best items of the exploration genres (genres absent from the recent window);
4. the best items overall, to fill the list.

"Best" ranks by cosine similarity between the item and the user's recent items, plus a
small popularity prior learnt from the training interactions (no simulator internals).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from billp.agents.item_index import ItemIndex
from billp.data import Catalogue
from billp.envs import GenreJaccard

POPULARITY_WEIGHT = 0.1
"""Weight of the normalised log-popularity prior in the candidate score."""
PLAN_SHARE = 0.5
"""Share of the shortlist reserved for the plan's genres."""
HINT_SHARE = 0.25
"""Share of the shortlist reserved for the exploration genres."""
MEMORY_SHARE = 0.25
"""Most of the shortlist that encouraged items from the actor memory may take."""


@dataclass(frozen=True)
class Shortlist:
    """Candidate ids in display order, and where each came from."""

    item_ids: list[int]
    sources: dict[int, str]


def exploration_genres(
    catalogue: Catalogue, recent: Sequence[int], count: int, rng: np.random.Generator
) -> list[str]:
    """``count`` genres that none of the ``recent`` items has, drawn at random.

    This is the "Category Analysis Tool" of BiLLP done as intended: the genres of the
    recent window come from the real genre lists, and the hint names genres outside it.
    """
    if count <= 0:
        return []
    seen = set().union(*(catalogue.genre_sets[i] for i in recent)) if recent else set()
    fresh = [g for g in catalogue.genres if g not in seen]
    if not fresh:
        fresh = list(catalogue.genres)
    picks = rng.choice(len(fresh), size=min(count, len(fresh)), replace=False)
    return [fresh[i] for i in sorted(picks)]


class ShortlistBuilder:
    """Scores catalogue items for one user state and composes the Actor's shortlist."""

    def __init__(self, catalogue: Catalogue, index: ItemIndex, popularity: np.ndarray) -> None:
        if len(popularity) != len(catalogue):
            raise ValueError(
                f"popularity has {len(popularity)} entries for {len(catalogue)} catalogue items"
            )
        self.catalogue = catalogue
        self.index = index
        log_pop = np.log1p(popularity.astype(np.float64))
        peak = log_pop.max() if log_pop.size and log_pop.max() > 0 else 1.0
        self._prior = (POPULARITY_WEIGHT * log_pop / peak).astype(np.float32)
        self._jaccard = GenreJaccard(catalogue.genre_sets)

    def genre_overlap(self, item: int) -> np.ndarray:
        """The genre Jaccard overlap of every catalogue item with ``item`` (the quit rule's
        :func:`~billp.envs.genre_jaccard`)."""
        return self._jaccard.to([item])[:, 0]

    def scores(self, recent: Collection[int]) -> np.ndarray:
        """Score of every catalogue item for a user whose recent items are ``recent``."""
        return self.index.vectors @ self.index.profile(recent) + self._prior

    def build(
        self,
        *,
        size: int,
        recent: Sequence[int],
        exclude: Collection[int],
        plan_genres: Sequence[str] = (),
        hint_genres: Sequence[str] = (),
        encouraged: Sequence[int] = (),
        discouraged: Collection[int] = (),
        overlap_limit: tuple[int, float] | None = None,
    ) -> Shortlist:
        """Compose a shortlist of at most ``size`` items, none in ``exclude``/``discouraged``;
        with ``overlap_limit = (item, limit)``, none whose genre overlap with ``item``
        (:meth:`genre_overlap`) reaches ``limit`` either, unless fewer than ``size`` items
        would be left."""
        banned = set(exclude) | set(discouraged)
        if overlap_limit is not None:
            close = np.flatnonzero(self.genre_overlap(overlap_limit[0]) >= overlap_limit[1])
            if len(self.catalogue) - len(banned | set(close.tolist())) >= size:
                banned |= set(close.tolist())
        scores = self.scores(recent)
        ranked = np.argsort(-scores, kind="stable")
        chosen: list[int] = []
        sources: dict[int, str] = {}

        def take(candidates: Sequence[int] | np.ndarray, limit: int, source: str) -> None:
            taken = 0
            for raw in candidates:
                item = int(raw)
                if len(chosen) >= size or taken >= limit:
                    return
                if item in banned or item in sources or not 0 <= item < len(self.catalogue):
                    continue
                chosen.append(item)
                sources[item] = source
                taken += 1

        take(encouraged, max(1, int(size * MEMORY_SHARE)), "memory")
        known = set(self.catalogue.genres)
        for share, genres, source in (
            (PLAN_SHARE, plan_genres, "plan"),
            (HINT_SHARE, hint_genres, "hint"),
        ):
            valid = [g for g in genres if g in known]
            if not valid:
                continue
            mask = self.catalogue.genre_matrix[:, [self.catalogue.genres.index(g) for g in valid]]
            in_genres = ranked[mask[ranked].any(axis=1)]
            take(in_genres, max(1, int(size * share)), source)
        take(ranked, size, "similar")
        return Shortlist(item_ids=chosen, sources=sources)
