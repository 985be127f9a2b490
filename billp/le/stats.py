"""Small, dependency-free statistics for the fidelity report."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    _, inverse, counts = np.unique(array, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average = ends - (counts - 1) / 2.0
    return average[inverse.reshape(-1)]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or fewer than 2 points."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (Pearson correlation of average ranks)."""
    return pearson(rankdata(x), rankdata(y))


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two score lists over the same objects (ties handled)."""
    n = len(x)
    if n != len(y):
        raise ValueError(f"kendall_tau_b needs equal lengths, got {n} and {len(y)}")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = np.sign(x[i] - x[j])
            dy = np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return math.nan if denominator == 0 else (concordant - discordant) / denominator


def rank_metrics(positive: float, negatives: np.ndarray, k: int) -> tuple[float, float, float]:
    """AUC, HR@k and NDCG@k of one positive among negatives (ties count half)."""
    negatives = np.asarray(negatives, dtype=np.float64)
    greater = float((negatives > positive).sum())
    equal = float((negatives == positive).sum())
    auc = 1.0 - (greater + 0.5 * equal) / negatives.size
    rank = greater + 0.5 * equal
    hit = 1.0 if rank < k else 0.0
    ndcg = 1.0 / math.log2(rank + 2.0) if rank < k else 0.0
    return auc, hit, ndcg
