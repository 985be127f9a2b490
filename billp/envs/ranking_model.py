"""A ranking-fair matrix factorisation: BPR on the same train interactions as the rating model.

The classic simulator's matrix model is a rating regressor: it predicts how much a user would
like an item, not whether they would pick it, so ranking a held-out next item against unseen
ones is not what it was fitted for. To compare ranking metrics like with like, the fidelity
report also scores this model: the same users, items and train interactions, the same latent
size, but fitted with Bayesian personalised ranking (each interacted item above a uniformly
drawn item, ``-log sigmoid(s(u, i) - s(u, j))``) instead of squared rating error.
It is fitted in a few seconds on one core and not cached.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from billp.common.torch_threads import torch_threads
from billp.data.dataset import Dataset

logger = logging.getLogger(__name__)

INIT_STD = 0.1
FIT_THREADS = 1


@dataclass(frozen=True)
class BPRConfig:
    """How the ranking model is fitted (defaults: ML-100K in a few seconds)."""

    dim: int = 32
    epochs: int = 40
    batch_size: int = 4096
    lr: float = 0.01
    weight_decay: float = 1e-4
    seed: int = 0


def fit_bpr_scores(dataset: Dataset, config: BPRConfig | None = None) -> np.ndarray:
    """Ranking scores ``[n_users, n_items]`` (float32) of BPR-MF fitted on the train part."""
    config = config or BPRConfig()
    train = dataset.train_interactions
    users = torch.as_tensor(np.asarray(train.users, dtype=np.int64))
    items = torch.as_tensor(np.asarray(train.items, dtype=np.int64))
    n_users, n_items = dataset.n_users, len(dataset.catalogue)
    started = time.perf_counter()
    with torch_threads(FIT_THREADS):
        generator = torch.Generator().manual_seed(config.seed)
        user_factors = torch.nn.Parameter(
            torch.randn(n_users, config.dim, generator=generator) * INIT_STD
        )
        item_factors = torch.nn.Parameter(
            torch.randn(n_items, config.dim, generator=generator) * INIT_STD
        )
        item_bias = torch.nn.Parameter(torch.zeros(n_items))
        optimizer = torch.optim.Adam([user_factors, item_factors, item_bias], lr=config.lr)
        for _ in range(config.epochs):
            order = torch.randperm(len(users), generator=generator)
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                u, i = users[batch], items[batch]
                j = torch.randint(n_items, (len(batch),), generator=generator)
                p = user_factors[u]
                positive = (p * item_factors[i]).sum(-1) + item_bias[i]
                negative = (p * item_factors[j]).sum(-1) + item_bias[j]
                penalty = (
                    p.pow(2).sum() + item_factors[i].pow(2).sum() + item_factors[j].pow(2).sum()
                )
                loss = torch.nn.functional.softplus(negative - positive).mean()
                loss = loss + config.weight_decay * penalty / len(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            scores = user_factors @ item_factors.T + item_bias[None, :]
    logger.info("BPR ranking model fitted in %.1f s", time.perf_counter() - started)
    return scores.numpy().astype(np.float32)
