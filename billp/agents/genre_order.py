"""The order of the genre list the Planner chooses from.

A 135M Planner picks the first genres it is shown more often than any other, so the order
is a decision, not a layout detail (``agent.genre_order``):

- ``catalogue``: the catalogue's order (alphabetical for MovieLens);
- ``history``: the genres of the user's shown history, most frequent first, then the rest;
- ``fresh``: as ``history``, with the genres of the last recommendations moved last;
- ``lessons``: as ``fresh``, and within each part the genres that the retrieved lessons'
  users rated above their own session mean come first and those rated below it last
  (macro-learning the small Planner can use: the lessons' measured facts rank its options).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from billp.config.agent import GenreOrder
from billp.data import Catalogue


def genres_by_frequency(catalogue: Catalogue, items: Sequence[int]) -> list[str]:
    """Every genre of the catalogue: those of ``items`` first, most frequent first (ties in
    catalogue order), then the others in catalogue order."""
    counts = dict.fromkeys(catalogue.genres, 0)
    for item in items:
        for genre in catalogue.genre_sets[item]:
            counts[genre] += 1
    order = {genre: rank for rank, genre in enumerate(catalogue.genres)}
    return sorted(catalogue.genres, key=lambda g: (-counts[g], order[g]))


def _evidence_rank(lift: Mapping[str, float], genre: str) -> int:
    """0 for a genre lessons rated above their sessions, 1 unmeasured (or level), 2 below."""
    value = lift.get(genre, 0.0)
    return 0 if value > 0 else 2 if value < 0 else 1


def planner_genres(
    catalogue: Catalogue,
    order: GenreOrder,
    history: Sequence[int],
    recommended: Sequence[int],
    lift: Mapping[str, float] | None = None,
) -> list[str]:
    """Every genre of the catalogue in the Planner's order; ``history`` is the history the
    Planner is shown, ``recommended`` the recent recommendations whose genres go last
    (``fresh`` and ``lessons``), ``lift`` the retrieved lessons' pooled genre lifts
    (:func:`~billp.agents.lesson_signals.lesson_lift`)."""
    if order == "catalogue":
        return list(catalogue.genres)
    genres = genres_by_frequency(catalogue, history)
    if order == "history":
        return genres
    recent = set().union(*(catalogue.genre_sets[i] for i in recommended))
    rank = {genre: i for i, genre in enumerate(genres)}
    lift = lift if order == "lessons" and lift else {}
    return sorted(genres, key=lambda g: (g in recent, _evidence_rank(lift, g), rank[g]))
