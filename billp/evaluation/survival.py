"""Kaplan-Meier survival of episode length, with the step cap as censoring.

An episode is a subject whose "death" is the user quitting. Its duration is the step on
which the user quit (``Len + 1``) for a quitting episode, and the number of steps it ran
(the cap) for an episode cut by the cap, which is *censored*: the user had not quit yet.
``S(t)`` is then the probability that a user is still engaged after ``t``
recommendations, i.e. accepted at least ``t`` of them (``S(0) = 1``).

At a time with both quits and censorings, the censored episodes count as at risk (the
usual convention: censoring happens just after the events of that time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Durations = Sequence[int] | np.ndarray
Events = Sequence[bool] | np.ndarray


@dataclass(frozen=True)
class SurvivalCurve:
    """``survival[t]`` for ``t = 0..horizon`` with the Kaplan-Meier bookkeeping."""

    times: np.ndarray
    survival: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    greenwood_se: np.ndarray

    def median(self) -> float:
        """Smallest ``t`` with ``S(t) <= 0.5``; ``nan`` if the curve stays above 0.5."""
        below = np.flatnonzero(self.survival <= 0.5)
        return float(self.times[below[0]]) if below.size else float("nan")

    def as_dict(self) -> dict[str, list[float] | list[int]]:
        return {
            "t": [int(t) for t in self.times],
            "survival": [round(float(s), 6) for s in self.survival],
            "at_risk": [int(n) for n in self.at_risk],
            "events": [int(d) for d in self.events],
            "censored": [int(c) for c in self.censored],
            "greenwood_se": [round(float(s), 6) for s in self.greenwood_se],
        }


def _indicator_matrices(
    durations: np.ndarray, events: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """At-risk ``[n, horizon+1]`` (duration >= t) and event ``[n, horizon+1]`` indicators."""
    times = np.arange(horizon + 1)
    at_risk = (durations[:, None] >= times[None, :]).astype(np.float64)
    happened = ((durations[:, None] == times[None, :]) & events[:, None]).astype(np.float64)
    return at_risk, happened


def _check(durations: Durations, events: Events) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(durations, dtype=np.int64).reshape(-1)
    e = np.asarray(events, dtype=bool).reshape(-1)
    if d.shape != e.shape:
        raise ValueError(f"durations ({d.size}) and events ({e.size}) differ in length")
    if (d < 0).any():
        raise ValueError(f"durations must be >= 0, got {int(d.min())}")
    return d, e


def weighted_survival(
    durations: Durations, events: Events, weights: np.ndarray, horizon: int
) -> np.ndarray:
    """Kaplan-Meier curves ``[B, horizon+1]``, one per row of ``weights`` ``[B, n]``."""
    d, e = _check(durations, events)
    at_risk, happened = _indicator_matrices(d, e, horizon)
    n_risk = weights @ at_risk
    n_events = weights @ happened
    hazard = np.divide(n_events, n_risk, out=np.zeros_like(n_events), where=n_risk > 0)
    return np.cumprod(1.0 - hazard, axis=1)


def kaplan_meier(durations: Durations, events: Events, horizon: int | None = None) -> SurvivalCurve:
    """The Kaplan-Meier estimate with Greenwood standard errors.

    Args:
        durations: per subject, the time of the event or of censoring.
        events: per subject, True if the event happened (False: censored).
        horizon: last time of the curve (default: the largest duration).
    """
    d, e = _check(durations, events)
    top = int(d.max()) if d.size else 0
    horizon = top if horizon is None else max(int(horizon), 0)
    at_risk, happened = _indicator_matrices(d, e, horizon)
    n_risk = at_risk.sum(axis=0)
    n_events = happened.sum(axis=0)
    censored_at = ((d[:, None] == np.arange(horizon + 1)[None, :]) & ~e[:, None]).sum(axis=0)
    hazard = np.divide(n_events, n_risk, out=np.zeros_like(n_events), where=n_risk > 0)
    survival = np.cumprod(1.0 - hazard)
    remaining = n_risk - n_events
    terms = np.divide(
        n_events,
        n_risk * remaining,
        out=np.zeros_like(n_events),
        where=(n_risk > 0) & (remaining > 0),
    )
    greenwood = survival * np.sqrt(np.cumsum(terms))
    return SurvivalCurve(
        times=np.arange(horizon + 1),
        survival=survival,
        at_risk=n_risk.astype(np.int64),
        events=n_events.astype(np.int64),
        censored=censored_at.astype(np.int64),
        greenwood_se=greenwood,
    )
