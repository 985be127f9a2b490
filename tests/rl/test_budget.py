"""EpochBudget: stops before an epoch that would pass the budget, never before the first."""

from __future__ import annotations

import pytest

from billp.rl import budget as budget_module
from billp.rl.budget import EpochBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stops_when_the_longest_epoch_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "perf_counter", clock)
    budget = EpochBudget(10.0)
    ran = 0
    for length in (3.0, 4.0, 1.0, 1.0):
        if not budget.allows_epoch():
            break
        budget.start_epoch()
        clock.now += length
        budget.end_epoch()
        ran += 1
    # after 3 s + 4 s = 7 s, the longest epoch (4 s) would end at 11 s > 10 s
    assert ran == 2 and budget.longest_epoch_s == 4.0 and budget.elapsed() == 7.0


def test_first_epoch_always_runs_and_setup_time_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "perf_counter", clock)
    started = clock.now
    clock.now += 50.0  # setup took longer than the whole budget
    budget = EpochBudget(10.0, started)
    assert budget.allows_epoch()
    budget.start_epoch()
    clock.now += 1.0
    budget.end_epoch()
    assert not budget.allows_epoch()


def test_invalid_use() -> None:
    with pytest.raises(ValueError):
        EpochBudget(0)
    with pytest.raises(RuntimeError):
        EpochBudget(1.0).end_epoch()
