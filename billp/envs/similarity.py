"""Genre-set similarity used by the quit rule."""

from __future__ import annotations


def genre_jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity ``|a & b| / |a | b|`` of two genre sets; two empty sets give 1.0."""
    union = len(a | b)
    if union == 0:
        return 1.0
    return len(a & b) / union
