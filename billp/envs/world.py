"""The simulated world, built once: dataset, user model, quit rule; envs are cheap views.

The worlds and their builders are registered in :mod:`billp.world_registry`: the classic
simulator (an MF rating matrix) and the LLM-fine-tuned environment (billp.le), whose model also
gives the observation's state vector.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium
from gymnasium.wrappers import TimeLimit

from billp.config import DataConfig, EnvConfig
from billp.data.dataset import Dataset, load_dataset
from billp.envs.quit_rule import QuitRule
from billp.envs.rating_model import load_or_fit_rating_matrix
from billp.envs.recommendation_env import RecommendationEnv
from billp.envs.user_model import MatrixUserModel, StateModel, UserModel
from billp.world_registry import world_spec


class World:
    """Everything an episode needs. Users are dense ids of ``dataset``; an episode starts
    from the user's starting history (the last H items of their train part)."""

    def __init__(
        self,
        dataset: Dataset,
        user_model: UserModel,
        config: EnvConfig,
        state_model: StateModel | None = None,
        slow_steps: bool = False,
    ) -> None:
        """
        Args:
            slow_steps: a step runs a model forward pass (the LE): the runner steps such envs
                in a worker thread so that the event loop keeps serving LLM replies.
        """
        self.dataset = dataset
        self.slow_steps = slow_steps
        self.user_model = user_model
        self.config = config
        self.state_model = state_model
        self.quit_rule = QuitRule(
            dataset.catalogue.genre_sets,
            window=config.quit_window,
            reward_threshold=config.quit_reward_threshold,
            similarity_threshold=config.similarity_threshold,
        )

    def starts(self, users: Sequence[int] | None = None) -> dict[int, list[int]]:
        """Starting histories of ``users`` (all users when None)."""
        chosen = range(self.dataset.n_users) if users is None else users
        return {self.dataset.check_user(u): self.dataset.starting_history(u) for u in chosen}

    def make_env(
        self, users: Sequence[int] | None = None, render_mode: str | None = None
    ) -> gymnasium.Env:
        """A :class:`RecommendationEnv` over ``users`` (all when None), capped by ``TimeLimit``.

        Raises:
            ValueError: ``users`` is empty.
            UnknownUserError: a user is not in the dataset.
        """
        if users is not None and len(users) == 0:
            raise ValueError("make_env needs at least one user (users=None means all users)")
        env = RecommendationEnv(
            catalogue=self.dataset.catalogue,
            user_model=self.user_model,
            starts=self.starts(users),
            quit_rule=self.quit_rule,
            observation_length=self.config.observation_length,
            render_mode=render_mode,
            state_model=self.state_model,
        )
        return TimeLimit(env, max_episode_steps=self.config.max_steps)


def build_world(env_config: EnvConfig, data_config: DataConfig) -> World:
    """Load the dataset and the world named by ``env_config.name`` (its builder in
    :mod:`billp.world_registry`).

    Raises:
        billp.le.errors.CheckpointError: ``le``: the LE checkpoint is missing or corrupted.
        billp.le.errors.CheckpointMismatchError: ``le``: it belongs to another catalogue or
            base model.
    """
    return build_world_on(env_config, load_dataset(data_config))


def _registered(target: str) -> Any:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def build_world_on(env_config: EnvConfig, dataset: Dataset) -> World:
    """:func:`build_world` on a dataset already loaded."""
    return _registered(world_spec(env_config.name).builder)(env_config, dataset)


def check_world(env_config: EnvConfig, dataset: Dataset) -> None:
    """Check in seconds what :func:`build_world_on` would load, without loading it (the world's
    checker in :mod:`billp.world_registry`; nothing for worlds without one).

    Raises:
        the errors of :func:`build_world` that its inputs cause.
    """
    checker = world_spec(env_config.name).checker
    if checker is not None:
        _registered(checker)(env_config, dataset)


def build_matrix_world(env_config: EnvConfig, dataset: Dataset) -> World:
    """The classic simulator: the rating matrix fitted (or cached) for ``dataset``."""
    cache_dir = Path(env_config.cache_dir) if env_config.cache_dir is not None else None
    matrix = load_or_fit_rating_matrix(dataset, env_config.rating_model, cache_dir)
    return World(dataset, MatrixUserModel(matrix), env_config)


def check_le_world(env_config: EnvConfig, dataset: Dataset) -> None:
    """The LE checkpoint fits the dataset's catalogue and its base model is here."""
    from billp.le.user_model import check_user_model

    check_user_model(env_config.le, dataset.catalogue)


def build_le_world(env_config: EnvConfig, dataset: Dataset) -> World:
    """The LLM environment: the LE checkpoint as user and state model."""
    from billp.le.user_model import load_user_model
    from billp.le.user_ratings import known_ratings

    le = load_user_model(env_config.le, dataset.catalogue, known_ratings(dataset))
    return World(dataset, le, env_config, state_model=le, slow_steps=True)
