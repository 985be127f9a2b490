"""Statistics of the fidelity report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from billp.fidelity.models import rank_metrics, spearman


def test_spearman_of_monotone_and_reversed_orders() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert math.isnan(spearman(x, np.ones(4)))
    # Ties take their average rank.
    assert spearman(np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(
        0.8660254, abs=1e-6
    )


def test_rank_metrics_of_one_positive() -> None:
    auc, hit, ndcg = rank_metrics(5.0, np.array([1.0, 2.0, 6.0, 5.0]), k=10)
    assert auc == pytest.approx(1 - 1.5 / 4)  # one above, one tie
    assert hit == 1.0
    assert ndcg == pytest.approx(1 / math.log2(1.5 + 2))
    assert rank_metrics(0.0, np.arange(1.0, 12.0), k=10)[1:] == (0.0, 0.0)
