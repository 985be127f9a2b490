"""The ranking-fair matrix model ranks a user's own train items above the rest."""

from __future__ import annotations

import numpy as np

from billp.envs.ranking_model import BPRConfig, fit_bpr_scores


def test_bpr_ranks_interacted_items_higher_and_is_seeded(toy_dataset) -> None:  # type: ignore[no-untyped-def]
    config = BPRConfig(dim=8, epochs=30, batch_size=64, lr=0.05)
    scores = fit_bpr_scores(toy_dataset, config)
    assert scores.shape == (toy_dataset.n_users, len(toy_dataset.catalogue))
    train = toy_dataset.train_interactions
    seen = np.zeros_like(scores, dtype=bool)
    seen[train.users, train.items] = True
    assert scores[seen].mean() > scores[~seen].mean()
    np.testing.assert_array_equal(scores, fit_bpr_scores(toy_dataset, config))
