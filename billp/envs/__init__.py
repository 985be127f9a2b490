"""Simulated users as Gymnasium envs; importing this package registers them.

Design decisions:

* The simulator's rating model is fitted on the train part of ALL users' logs (so it can score
  every user); users are split into train users (memory building) and test users (evaluation);
  an episode starts from the last H items of the user's train part.
* The step on which the user quits returns its reward with ``terminated=True``; the first
  recommendation can already end the episode (on a low reward). The step cap comes from
  ``TimeLimit`` and shows as ``truncated=True``.
"""

from __future__ import annotations

from billp.envs.quit_rule import QuitDecision, QuitRule
from billp.envs.rating_model import default_cache_dir, fit_rating_model, load_or_fit_rating_matrix
from billp.envs.recommendation_env import RecommendationEnv
from billp.envs.registration import LE_ENV_ID, MATRIX_ENV_ID
from billp.envs.similarity import GenreJaccard, genre_jaccard
from billp.envs.user_model import MatrixUserModel, StateModel, UserModel
from billp.envs.world import World, build_world, build_world_on, check_world

__all__ = [
    "LE_ENV_ID",
    "MATRIX_ENV_ID",
    "GenreJaccard",
    "MatrixUserModel",
    "QuitDecision",
    "QuitRule",
    "RecommendationEnv",
    "StateModel",
    "UserModel",
    "World",
    "build_world",
    "build_world_on",
    "check_world",
    "default_cache_dir",
    "fit_rating_model",
    "genre_jaccard",
    "load_or_fit_rating_matrix",
]
