"""The fidelity report runs end to end on the tiny LE and says what it measured."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from billp.config import EnvConfig, LEEvalConfig, RatingModelConfig
from billp.le.checkpoint import REPORT_JSON, REPORT_MD
from billp.le.fidelity import POLICIES, FidelityReport, evaluate_checkpoint
from tests.le.tiny_le import TinyLE


@pytest.fixture(scope="module")
def report(
    tiny_le: TinyLE, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FidelityReport, Path]:
    out = tmp_path_factory.mktemp("report")
    le = tiny_le.config.model_copy(
        update={
            "checkpoint": tiny_le.checkpoint,
            "evaluate": LEEvalConfig(
                positions_per_user=2, negatives=10, policy_users=2, greedy_pool=5
            ),
        }
    )
    env = EnvConfig(
        le=le,
        max_steps=4,
        cache_dir=out / "cache",
        rating_model=RatingModelConfig(dim=2, epochs=20),
    )
    return evaluate_checkpoint(tiny_le.dataset, env, out), out


def test_report_compares_both_models(report: tuple[FidelityReport, Path]) -> None:
    result, _ = report
    assert set(result.models) == {"le", "matrix"}
    for metrics in result.models.values():
        assert 0.0 <= metrics.auc <= 1.0 and 0.0 <= metrics.hr_at_10 <= 1.0
        assert 1.0 <= metrics.mean_reward_random_item <= 5.0
        assert math.isfinite(metrics.rating_rmse)
    assert result.ranking_instances > 0 and result.rating_points > 0
    for simulator in ("matrix", "le"):
        assert set(result.policies[simulator]) == set(POLICIES)
        for policy in result.policies[simulator].values():
            assert 1 <= policy.mean_length <= 4
    assert -1.0 <= result.kendall_tau <= 1.0 or math.isnan(result.kendall_tau)
    # The two models are compared, not one reported twice: same instances, different scores.
    le, matrix = result.models["le"], result.models["matrix"]
    assert le.model_dump() != matrix.model_dump()
    assert (le.auc, le.rating_rmse) != (matrix.auc, matrix.rating_rmse)
    assert result.training is not None and result.training["lora_steps"] > 0


def test_report_files_are_written(report: tuple[FidelityReport, Path]) -> None:
    result, out = report
    data = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    assert data["models"]["le"]["auc"] == pytest.approx(result.models["le"].auc)
    markdown = (out / REPORT_MD).read_text(encoding="utf-8")
    assert "| AUC (1 positive vs sampled negatives) |" in markdown
    assert "Kendall tau-b" in markdown and "pool of 5 unseen items" in markdown
