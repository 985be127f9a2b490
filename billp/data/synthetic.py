"""Small synthetic datasets in RecBole atomic format, for tests and quick demos.

Users like some genres and dislike others, so a rating model has structure to learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

TOY_GENRES: tuple[str, ...] = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")
TOY_FIRST_YEAR = 1980
TOY_YEAR_SPAN = 40
MAX_GENRES_PER_ITEM = 2
LIKED_RATING = 5.0
DISLIKED_RATING = 1.0
RATING_NOISE = 0.5
MIN_RATING, MAX_RATING = 1.0, 5.0


def write_atomic_file(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a tab-separated atomic file with a ``name:type`` header."""
    lines = ["\t".join(header)]
    lines.extend("\t".join(str(value) for value in row) for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_toy_dataset(
    directory: Path,
    name: str = "toy",
    n_users: int = 12,
    n_items: int = 30,
    per_user: int = 15,
    seed: int = 0,
) -> Path:
    """Write ``<directory>/<name>.inter`` and ``.item``; returns ``directory``.

    Raw ids are 1-based strings (like MovieLens). Each user rates ``per_user`` distinct items
    (``per_user <= n_items``): rating 5 for a liked genre, 1 otherwise, plus small noise.
    """
    if not 1 <= per_user <= n_items:
        raise ValueError(f"per_user must be in 1..n_items={n_items}, got {per_user}")
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    item_genres: list[list[str]] = []
    item_rows: list[list[object]] = []
    for item in range(n_items):
        count = int(rng.integers(1, MAX_GENRES_PER_ITEM + 1))
        genres = sorted(rng.choice(TOY_GENRES, size=count, replace=False).tolist())
        item_genres.append(genres)
        year = TOY_FIRST_YEAR + int(rng.integers(0, TOY_YEAR_SPAN))
        item_rows.append([item + 1, f"Movie {item + 1}", year, " ".join(genres)])
    write_atomic_file(
        directory / f"{name}.item",
        ["item_id:token", "movie_title:token_seq", "release_year:token", "class:token_seq"],
        item_rows,
    )
    inter_rows: list[list[object]] = []
    for user in range(n_users):
        liked = set(rng.choice(TOY_GENRES, size=2, replace=False).tolist())
        chosen = rng.choice(n_items, size=per_user, replace=False)
        for step, item in enumerate(chosen):
            base = LIKED_RATING if liked & set(item_genres[int(item)]) else DISLIKED_RATING
            noisy = base + rng.normal(0.0, RATING_NOISE)
            rating = int(np.clip(round(noisy), MIN_RATING, MAX_RATING))
            inter_rows.append([user + 1, int(item) + 1, rating, 1_000_000 + 100 * step + user])
    write_atomic_file(
        directory / f"{name}.inter",
        ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
        inter_rows,
    )
    return directory
