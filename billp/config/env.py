"""The ``env`` section: the simulated user's world model, quit rule and step cap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from billp.config.le import LEConfig
from billp.config.section import Section
from billp.world_registry import WORLD_NAMES


class RatingModelConfig(Section):
    """Matrix factorisation rating model of the classic simulator."""

    dim: int = Field(32, ge=1, description="Latent dimension of user and item factors.")
    epochs: int = Field(150, ge=1, description="Full-batch training epochs.")
    lr: float = Field(0.05, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(
        2.5e-4,
        ge=0,
        description="L2 penalty: loss = MSE + weight_decay * (sum of squared user and item "
        "factors). 2.5e-4 gives train RMSE ~0.84 on ML-100K.",
    )
    seed: int = Field(0, description="Seed of the factor initialisation.")


if TYPE_CHECKING:
    EnvName = str
else:
    EnvName = Literal[WORLD_NAMES]
"""The worlds ``--env.name`` accepts (``--help`` lists them): the names registered in
:mod:`billp.world_registry`. A Literal so that a bad name fails validation, naming them."""


class EnvConfig(Section):
    """The simulated user: world model, quit rule and step cap."""

    name: EnvName = Field(
        "le",
        description="World model: 'le' (the LLM-fine-tuned environment, billp.le; default) or "
        "'matrix' (the classic MF simulator).",
    )
    max_steps: int = Field(
        20,
        ge=1,
        description="Step cap; reaching it ends the episode as truncated (TimeLimit). 20 keeps "
        "the default CPU run within minutes; BiLLP (and the registered gymnasium ids) use 50.",
    )
    observation_length: int = Field(
        10, ge=1, description="K: history item ids in each observation."
    )
    quit_window: int = Field(
        2,
        ge=0,
        description="W: recent recommendations the new item is compared with. Calibrated with "
        "similarity_threshold on train users' real held-out sequences "
        "(eval/results/quit_calibration.md): the strictest rule that still lets about 80 % "
        "of real next items through; BiLLP's W = 4 with the same genre set lets 76 % through.",
    )
    quit_reward_threshold: float = Field(
        2.0, description="The user quits after a reward strictly below this value."
    )
    similarity_threshold: float = Field(
        0.75,
        ge=0,
        le=1,
        description="Genre-set Jaccard similarity at or above which an item counts as too "
        "similar to a recent one (1.0: the same genre set). A repeated item always does. "
        "Calibrated with quit_window (eval/results/quit_calibration.md).",
    )
    rating_model: RatingModelConfig = Field(default_factory=RatingModelConfig)
    le: LEConfig = Field(default_factory=LEConfig)
    cache_dir: Path | None = Field(
        None, description="Cache for fitted models (default: the user cache, ~/.cache/billp)."
    )
