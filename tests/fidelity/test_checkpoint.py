"""The fidelity report runs end to end on the tiny LE and says what it measured."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from billp.config import EnvConfig, LEEvalConfig, RatingModelConfig
from billp.fidelity.agreement import SIMPLE_POLICIES
from billp.fidelity.checkpoint import evaluate_checkpoint
from billp.fidelity.report import FidelityReport
from billp.le.checkpoint import REPORT_JSON, REPORT_MD
from tests.le.tiny_le import TinyLE


@pytest.fixture(scope="module")
def report(
    tiny_le: TinyLE, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FidelityReport, Path]:
    out = tmp_path_factory.mktemp("report")
    le = tiny_le.config.model_copy(update={"checkpoint": tiny_le.checkpoint})
    settings = LEEvalConfig(
        positions_per_user=2, negatives=5, policy_users=3, replay_items=4, rl_policies=False
    )
    env = EnvConfig(
        le=le,
        max_steps=4,
        cache_dir=out / "cache",
        rating_model=RatingModelConfig(dim=2, epochs=20),
    )
    return evaluate_checkpoint(tiny_le.dataset, env, settings, out), out


def test_report_compares_the_models(report: tuple[FidelityReport, Path]) -> None:
    result, _ = report
    assert set(result.models) == {"le", "matrix", "bpr"}
    for name in ("le", "matrix"):
        metrics = result.models[name]
        assert 0.0 <= metrics.auc <= 1.0 and 0.0 <= metrics.hr_at_10 <= 1.0
        assert metrics.mean_reward_random_item is not None
        assert 1.0 <= metrics.mean_reward_random_item <= 5.0
        assert metrics.rating_rmse is not None and math.isfinite(metrics.rating_rmse)
        low, high = metrics.reward_range or [0.0, 0.0]
        assert 1.0 <= low <= high <= 5.0
    # The ranking-only model has no rating numbers.
    assert result.models["bpr"].rating_rmse is None
    assert result.ranking_instances > 0 and result.ratings.points > 0
    le, matrix = result.models["le"], result.models["matrix"]
    assert (le.auc, le.rating_rmse) != (matrix.auc, matrix.rating_rmse)
    assert result.training is not None and result.training["lora_steps"] > 0
    assert result.calibration["extrapolate"] is True


def test_report_replays_real_behaviour_in_both_worlds(
    report: tuple[FidelityReport, Path],
) -> None:
    result, _ = report
    assert set(result.replay) == {"matrix", "le"}
    for stats in result.replay.values():
        assert stats.items == sum(stats.verdicts.values()) > 0
        assert stats.acceptance.low <= stats.acceptance.value <= stats.acceptance.high
        assert 1.0 <= stats.survival.value <= result.replay_max_items
        # Real sequences never repeat an item, so the rule never says "repeat".
        assert "repeat" not in stats.verdicts


def test_report_ranks_non_oracle_policies_in_both_worlds(
    report: tuple[FidelityReport, Path],
) -> None:
    result, _ = report
    agreement = result.agreement
    assert set(agreement.policies) == {"matrix", "le"}
    for world in agreement.policies.values():
        assert set(world) == set(SIMPLE_POLICIES)
        for policy in world.values():
            assert 1 <= policy.mean_length <= 4
            assert len(policy.returns) == len(agreement.users) == 3
            assert policy.mean_return == pytest.approx(sum(policy.returns) / 3)
    tau, (low, high) = agreement.kendall_tau, agreement.tau_ci
    assert math.isnan(tau) or -1.0 <= tau <= 1.0
    assert math.isnan(low) or -1.0 <= low <= high <= 1.0


def test_report_files_are_written(report: tuple[FidelityReport, Path]) -> None:
    result, out = report
    data = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    assert data["models"]["le"]["auc"] == pytest.approx(result.models["le"].auc)
    markdown = (out / REPORT_MD).read_text(encoding="utf-8")
    assert "| AUC (1 positive vs sampled negatives) |" in markdown
    assert "## Goals" in markdown and "## Real behaviour replayed" in markdown
    assert "Kendall tau-b" in markdown and "matrix (BPR, ranking)" in markdown
    assert "reward per step" in markdown
