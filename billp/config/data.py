"""The ``data`` section: where the interaction log comes from and how it is split."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from billp.config.section import Section


class DataConfig(Section):
    """Where the interaction log comes from and how it is split."""

    path: Path | None = Field(
        None,
        description="Folder of RecBole atomic files (NAME.inter, NAME.item, optional NAME.user). "
        "Default: MovieLens-100K inside the installed recbole package.",
    )
    name: str | None = Field(
        None, description="File prefix inside data.path (default: the folder's name)."
    )
    history_length: int = Field(
        10, ge=1, description="H: items of the user's log that form the episode's starting history."
    )
    test_user_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of users held out as test users (seeded split)."
    )
    holdout_fraction: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share of each user's latest interactions held out from the simulator's "
        "training data (used for fidelity checks).",
    )
    min_user_interactions: int = Field(
        5, ge=2, description="Users with fewer interactions are dropped."
    )
    split_seed: int = Field(
        233, description="Seed of the user split; fixed across run seeds so runs share users."
    )
