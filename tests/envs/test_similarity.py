"""Genre Jaccard similarity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from billp.envs import genre_jaccard

GENRES = st.frozensets(st.sampled_from(["Action", "Comedy", "Drama", "Horror"]))


def test_known_values() -> None:
    a = frozenset({"Action", "Comedy"})
    assert genre_jaccard(a, a) == 1.0
    assert genre_jaccard(a, frozenset({"Comedy"})) == 0.5
    assert genre_jaccard(a, frozenset({"Drama"})) == 0.0
    assert genre_jaccard(frozenset(), frozenset()) == 1.0
    assert genre_jaccard(frozenset(), a) == 0.0


@given(GENRES, GENRES)
def test_symmetric_and_bounded(a: frozenset[str], b: frozenset[str]) -> None:
    value = genre_jaccard(a, b)
    assert value == genre_jaccard(b, a)
    assert 0.0 <= value <= 1.0
    assert (value == 1.0) == (a == b)
