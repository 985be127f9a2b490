"""The matrix user model."""

from __future__ import annotations

import numpy as np
import pytest

from billp.data import UnknownItemError, UnknownUserError
from billp.envs import MatrixUserModel, UserModel


def test_rewards_are_clipped_ratings() -> None:
    model = MatrixUserModel(np.array([[0.5, 3.25, 7.0], [2.0, 4.0, 1.0]]))
    assert isinstance(model, UserModel)
    assert model.name == "matrix"
    assert (model.n_users, model.n_items) == (2, 3)
    assert model.reward(0, [1], 0) == 1.0
    assert model.reward(0, [], 1) == 3.25
    assert model.reward(0, [], 2) == 5.0
    rewards = model.rewards(1, [0], [2, 0, 1])
    assert rewards.tolist() == [1.0, 2.0, 4.0]
    assert rewards.dtype == np.float32
    rewards[0] = 9.0  # a copy: the model is unchanged
    assert model.reward(1, [], 2) == 1.0


def test_unknown_user_or_item() -> None:
    model = MatrixUserModel(np.full((2, 3), 3.0))
    with pytest.raises(UnknownUserError, match="user id 2 is not in the rating matrix of 2 users"):
        model.reward(2, [], 0)
    with pytest.raises(UnknownItemError, match="item id 3 is not in the catalogue of 3 items"):
        model.rewards(0, [], [0, 3])


def test_matrix_is_validated() -> None:
    with pytest.raises(ValueError, match="2-D"):
        MatrixUserModel(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        MatrixUserModel(np.array([[1.0, np.nan]]))
