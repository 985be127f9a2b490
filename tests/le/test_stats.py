"""Statistics of the fidelity report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from billp.le.stats import kendall_tau_b, rank_metrics, rankdata, spearman


def test_rankdata_averages_ties() -> None:
    np.testing.assert_allclose(rankdata(np.array([10.0, 20.0, 10.0, 30.0])), [1.5, 3, 1.5, 4])


def test_spearman_of_monotone_and_reversed_orders() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert math.isnan(spearman(x, np.ones(4)))


def test_kendall_tau_b() -> None:
    assert kendall_tau_b([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # one swapped pair out of six: (5 - 1) / 6
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="equal lengths"):
        kendall_tau_b([1, 2], [1])


def test_rank_metrics_of_one_positive() -> None:
    auc, hit, ndcg = rank_metrics(5.0, np.array([1.0, 2.0, 6.0, 5.0]), k=10)
    assert auc == pytest.approx(1 - 1.5 / 4)  # one above, one tie
    assert hit == 1.0
    assert ndcg == pytest.approx(1 / math.log2(1.5 + 2))
    assert rank_metrics(0.0, np.arange(1.0, 12.0), k=10)[1:] == (0.0, 0.0)
