"""Gymnasium registration of ``billp/MovieLens-Matrix-v0`` and ``billp/MovieLens-LE-v0``
(importing billp.envs registers them).

Both have the same protocol (Discrete actions, the quit rule, ``terminated``/``truncated``);
the LE env's Dict observation also carries ``"state"``, the LE state vector. ``gymnasium.make``
caps episodes with its ``max_episode_steps`` (registered: 50, BiLLP's cap); pass
``max_episode_steps=`` to change it. ``World.make_env`` (what ``billp.simulate`` uses) applies
``EnvConfig.max_steps`` instead, whose default is shorter (20) to keep CPU runs quick.
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
LE_ENV_ID = "billp/MovieLens-LE-v0"
DEFAULT_MAX_EPISODE_STEPS = 50


def _env_config(given: EnvConfig | Mapping[str, Any] | None, name: str, env_id: str) -> EnvConfig:
    """``given`` validated, with ``name`` filled in when it was not set explicitly.

    Raises:
        ValueError: ``given`` explicitly names the other world.
    """
    if isinstance(given, EnvConfig):
        explicit = "name" in given.model_fields_set
        env = given if explicit else given.model_copy(update={"name": name})
    else:
        tree = dict(given or {})
        tree.setdefault("name", name)
        env = EnvConfig.model_validate(tree)
    if env.name != name:
        raise ValueError(f"{env_id} is the {name} simulator; env_config.name is {env.name!r}")
    if "max_steps" in env.model_fields_set and env.max_steps != DEFAULT_MAX_EPISODE_STEPS:
        logger.warning(
            "env_config.max_steps=%d is not applied by gymnasium.make; pass "
            "max_episode_steps=%d to gymnasium.make (or use World.make_env)",
            env.max_steps,
            env.max_steps,
        )
    return env


def _make(
    env: EnvConfig,
    data_config: DataConfig | Mapping[str, Any] | None,
    users: Sequence[int] | None,
    render_mode: str | None,
) -> RecommendationEnv:
    data = DataConfig.model_validate(data_config or {})
    world = build_world(env, data)
    wrapped = world.make_env(users, render_mode=render_mode)
    inner = wrapped.unwrapped
    assert isinstance(inner, RecommendationEnv)
    return inner


def make_matrix_env(
    env_config: EnvConfig | Mapping[str, Any] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    users: Sequence[int] | None = None,
    render_mode: str | None = None,
) -> RecommendationEnv:
    """Entry point of ``billp/MovieLens-Matrix-v0``: the matrix simulator, without TimeLimit.

    Configs may be given as models or plain dicts (``name`` defaults to "matrix"); ``users``
    defaults to all users.

    Raises:
        ValueError: ``env_config.name`` is explicitly not "matrix", or ``users`` is empty.
    """
    return _make(_env_config(env_config, "matrix", MATRIX_ENV_ID), data_config, users, render_mode)


def make_le_env(
    env_config: EnvConfig | Mapping[str, Any] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    users: Sequence[int] | None = None,
    render_mode: str | None = None,
) -> RecommendationEnv:
    """Entry point of ``billp/MovieLens-LE-v0``: the LE simulator, without TimeLimit.

    The LE checkpoint is ``env_config.le.checkpoint`` (default: the shipped MovieLens-100K
    one); its observation adds ``"state"`` to ``"history"`` and ``"mask"``.

    Raises:
        ValueError: ``env_config.name`` is explicitly not "le", or ``users`` is empty.
        billp.le.errors.CheckpointError: the checkpoint is missing, corrupted or mismatched.
    """
    return _make(_env_config(env_config, "le", LE_ENV_ID), data_config, users, render_mode)


def register_envs() -> None:
    """Register billp's envs with Gymnasium (idempotent)."""
    for env_id, factory in ((MATRIX_ENV_ID, "make_matrix_env"), (LE_ENV_ID, "make_le_env")):
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=f"billp.envs.registration:{factory}",
                max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
            )


register_envs()
