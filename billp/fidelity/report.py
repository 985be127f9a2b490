"""What the fidelity report holds (``fidelity.json``): the models' metrics, the replay of real
sequences, the policy-order agreement and the settings they used. Computed by
:mod:`billp.fidelity.checkpoint`, rendered by :mod:`billp.fidelity.markdown`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from billp.fidelity.agreement import Agreement
from billp.fidelity.models import ModelFidelity, RatingCheck
from billp.fidelity.replay import ReplayStats


class QuitRuleSettings(BaseModel):
    """The quit rule both worlds used."""

    window: int
    similarity_threshold: float
    reward_threshold: float


class FidelityReport(BaseModel):
    """What ``python -m billp.le evaluate`` writes (fidelity.json) and renders (fidelity.md)."""

    checkpoint: str
    """The checkpoint folder's name (the report is written beside it by default)."""
    dataset: str
    base_model: str
    test_users: int
    ranking_instances: int
    negatives: int
    models: dict[str, ModelFidelity]
    """le, matrix (the rating MF) and bpr (ranking only)."""
    ratings: RatingCheck
    calibration: dict[str, Any]
    """The LE calibration's knots and whether it extrapolates."""
    quit_rule: QuitRuleSettings
    replay: dict[str, ReplayStats]
    """world -> verdicts on real held-out sequences."""
    replay_max_items: int
    agreement: Agreement
    training: dict[str, Any] | None
    evaluation_seconds: float
    evaluation_peak_rss_mib: float
