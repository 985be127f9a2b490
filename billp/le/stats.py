"""Statistics of the fidelity report: Spearman's rho (scipy) and one ranking instance's
AUC, HR@k and NDCG@k."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import spearmanr


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho with tied ranks averaged; NaN when either side is constant."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


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
