"""Gymnasium registration of ``billp/MovieLens-Matrix-v0`` (importing billp.envs registers it).

``gymnasium.make`` caps episodes with its ``max_episode_steps`` (registered: 50, the default
``EnvConfig.max_steps``); pass ``max_episode_steps=`` to change it. ``World.make_env`` applies
``EnvConfig.max_steps`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium

from billp.config import DataConfig, EnvConfig
from billp.envs.recommendation_env import RecommendationEnv
from billp.envs.world import build_world

logger = logging.getLogger(__name__)

MATRIX_ENV_ID = "billp/MovieLens-Matrix-v0"
DEFAULT_MAX_EPISODE_STEPS = 50


def make_matrix_env(
    env_config: EnvConfig | Mapping[str, Any] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    users: Sequence[int] | None = None,
    render_mode: str | None = None,
) -> RecommendationEnv:
    """Entry point of ``billp/MovieLens-Matrix-v0``: the matrix simulator, without TimeLimit.

    Configs may be given as models or plain dicts; ``users`` defaults to all users.

    Raises:
        ValueError: ``env_config.name`` is not "matrix" or ``users`` is empty.
    """
    env = EnvConfig.model_validate(env_config or {})
    data = DataConfig.model_validate(data_config or {})
    if env.name != "matrix":
        raise ValueError(
            f"{MATRIX_ENV_ID} is the matrix simulator; env_config.name is {env.name!r}"
        )
    if env.max_steps != DEFAULT_MAX_EPISODE_STEPS:
        logger.warning(
            "env_config.max_steps=%d is not applied by gymnasium.make; pass "
            "max_episode_steps=%d to gymnasium.make (or use World.make_env)",
            env.max_steps,
            env.max_steps,
        )
    world = build_world(env, data)
    wrapped = world.make_env(users, render_mode=render_mode)
    inner = wrapped.unwrapped
    assert isinstance(inner, RecommendationEnv)
    return inner


def register_envs() -> None:
    """Register billp's envs with Gymnasium (idempotent)."""
    if MATRIX_ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=MATRIX_ENV_ID,
            entry_point="billp.envs.registration:make_matrix_env",
            max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
        )


register_envs()
