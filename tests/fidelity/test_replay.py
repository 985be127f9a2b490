"""Replay verdicts pooled into acceptance, survival and reward-vs-rating, with user CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from billp.config import DataConfig
from billp.data import Dataset, load_dataset, write_toy_dataset
from billp.envs.quit_rule import QuitRule
from billp.envs.replay import replay_user
from billp.envs.user_model import MatrixUserModel
from billp.fidelity.replay import summarise


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    folder: Path = write_toy_dataset(tmp_path_factory.mktemp("replay") / "toy")
    return load_dataset(DataConfig(path=folder, history_length=3))


def test_summary_pools_items_and_resamples_users(toy_dataset) -> None:  # type: ignore[no-untyped-def]
    users = [u for u in range(toy_dataset.n_users)]
    rule = QuitRule(toy_dataset.catalogue.genre_sets, 1, 2.0, 1.0)
    matrix = MatrixUserModel(np.full((toy_dataset.n_users, len(toy_dataset.catalogue)), 3.0))
    replays = [replay_user(toy_dataset, matrix, rule, u, 10) for u in users]
    stats = summarise(replays)
    total = sum(len(r.items) for r in replays)
    assert stats.items == total == sum(stats.verdicts.values())
    assert stats.acceptance.value == stats.verdicts.get("accepted", 0) / total
    assert stats.acceptance.low <= stats.acceptance.value <= stats.acceptance.high
    assert stats.mean_reward == 3.0
