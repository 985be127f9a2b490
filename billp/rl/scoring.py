"""Scorers (a trained net as item scores for histories) and offline HR/NDCG over the catalogue."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

from billp.rl.sqn import SQNModel
from billp.rl.transitions import EvalCases, windows

SCORE_BATCH = 256
"""Histories scored per forward pass in offline evaluation."""


class Scorer(Protocol):
    """Scores every catalogue item for each history (higher: recommend first)."""

    le_state_dim: int
    """> 0: the scorer needs the LE state after each history."""

    def scores(
        self, histories: Sequence[Sequence[int]], le_states: np.ndarray | None
    ) -> np.ndarray:
        """float32 ``[B, n_items]``."""
        ...


class SQNScorer:
    """An :class:`SQNModel` ranking with its CE head (SQN) or its Q head."""

    def __init__(self, model: SQNModel, max_len: int, rank_by: str) -> None:
        self.model = model.eval()
        self.max_len = max_len
        self.rank_by = rank_by
        self.le_state_dim = model.le_state_dim

    @torch.inference_mode()
    def scores(
        self, histories: Sequence[Sequence[int]], le_states: np.ndarray | None
    ) -> np.ndarray:
        window, length = windows(histories, self.max_len, self.model.pad)
        le = None if not self.le_state_dim or le_states is None else torch.as_tensor(le_states)
        logits, q = self.model(torch.as_tensor(window), torch.as_tensor(length), le)
        chosen = logits if self.rank_by == "ce" else q
        return chosen.float().numpy()


class PopularityScorer:
    """Every history gets the same scores: how often each item was logged in train data."""

    le_state_dim = 0

    def __init__(self, popularity: np.ndarray) -> None:
        self.popularity = np.asarray(popularity, dtype=np.float32)

    def scores(
        self, histories: Sequence[Sequence[int]], le_states: np.ndarray | None
    ) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(histories), len(self.popularity))).copy()


def ranks(scores: np.ndarray, targets: np.ndarray, excluded: Sequence[Sequence[int]]) -> np.ndarray:
    """0-based rank of each target: the other allowed items scored at least as high (ties
    count against the target, so a scorer that gives many items one score, such as BCQ's
    masked actions, gains nothing from the tie). ``excluded[b]`` are masked out of row ``b``
    (never the target itself)."""
    masked = scores.astype(np.float64, copy=True)
    for row, items in enumerate(excluded):
        if len(items):
            masked[row, np.asarray(items, dtype=np.int64)] = -np.inf
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets].astype(np.float64)
    masked[rows, targets] = target_scores
    return (masked >= target_scores[:, None]).sum(axis=1) - 1


def hr_ndcg(rank: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """HR@k (share of targets ranked < k) and NDCG@k (one relevant item: 1/log2(rank+2))."""
    out: dict[str, float] = {}
    for k in ks:
        hit = rank < k
        out[f"HR@{k}"] = float(hit.mean()) if len(rank) else math.nan
        gains = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
        out[f"NDCG@{k}"] = float(gains.mean()) if len(rank) else math.nan
    return out


def evaluate_offline(
    scorer: Scorer,
    cases: EvalCases,
    le_states: np.ndarray | None,
    ks: Sequence[int],
    exclude_seen: bool,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """HR@k and NDCG@k of ``scorer`` on ``cases`` over the full catalogue."""
    if scorer.le_state_dim and le_states is None:
        raise ValueError("this scorer reads the LE state; evaluate_offline got none")
    all_ranks = []
    for start in range(0, len(cases.targets), SCORE_BATCH):
        stop = min(start + SCORE_BATCH, len(cases.targets))
        contexts = cases.contexts[start:stop]
        states = None if le_states is None else le_states[start:stop]
        scores = scorer.scores(contexts, states)
        excluded = contexts if exclude_seen else [[] for _ in contexts]
        all_ranks.append(ranks(scores, cases.targets[start:stop], excluded))
        if progress is not None:
            progress(stop, len(cases.targets))
    rank = np.concatenate(all_ranks) if all_ranks else np.zeros(0, dtype=np.int64)
    result = hr_ndcg(rank, ks)
    result["cases"] = float(len(rank))
    return result
