"""What the retrieved lessons measured, pooled for the episode that reads them.

Lessons are retrieved for the user at hand (the nearest situations in the reflection
memory); besides their text, each carries facts its episode measured (see
:class:`~billp.memory.ReflectionEntry`). These functions pool those facts into the signals
the Planner's genre order (``agent.genre_order = "lessons"``) and the shortlist
(``agent.lesson_overlap_limit``) use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def lesson_lift(lifts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Each genre's mean lift over the lessons that measured it (a lesson's lift: the mean
    reward of its episode's movies of that genre minus the episode's mean reward)."""
    totals: dict[str, list[float]] = {}
    for lift in lifts:
        for genre, value in lift.items():
            totals.setdefault(genre, []).append(value)
    return {genre: sum(v) / len(v) for genre, v in totals.items()}


def leaving_overlap(overlaps: Iterable[float | None]) -> float | None:
    """The least genre overlap between consecutive movies after which a lesson's user left
    (None when no retrieved lesson ended that way): overlaps at or above it have lost users.
    A user who left after two movies with no genre in common gives no overlap to avoid (a
    limit of 0 would exclude every candidate), so only overlaps above 0 count."""
    found = [o for o in overlaps if o is not None and o > 0]
    return min(found) if found else None
