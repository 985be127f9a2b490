"""A wall-clock training budget that is never overrun by a whole epoch."""

from __future__ import annotations

import time


class EpochBudget:
    """Decides before each epoch whether it can still end within ``budget_s``.

    An epoch is started only if the time spent so far plus the longest epoch seen so far
    fits the budget, so training stops *before* the budget rather than one epoch after it.
    The first epoch always runs (a checkpoint with no training at all is useless), so a
    budget smaller than one epoch is overrun by that epoch.
    """

    def __init__(self, budget_s: float, started: float | None = None) -> None:
        if budget_s <= 0:
            raise ValueError(f"budget_s must be > 0, got {budget_s}")
        self.budget_s = budget_s
        self.started = time.perf_counter() if started is None else started
        self.longest_epoch_s = 0.0
        self.epochs = 0
        self._epoch_started: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def allows_epoch(self) -> bool:
        """True if the next epoch is expected to end within the budget (always for the first)."""
        if self.epochs == 0:
            return True
        return self.elapsed() + self.longest_epoch_s <= self.budget_s

    def start_epoch(self) -> None:
        self._epoch_started = time.perf_counter()

    def end_epoch(self) -> None:
        if self._epoch_started is None:
            raise RuntimeError("end_epoch without start_epoch")
        self.longest_epoch_s = max(self.longest_epoch_s, time.perf_counter() - self._epoch_started)
        self._epoch_started = None
        self.epochs += 1
