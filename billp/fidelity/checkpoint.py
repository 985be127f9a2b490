"""The fidelity report of an LE checkpoint: is each world a trustworthy instrument?

Three parts, all on test users' held-out interactions (never used to train any model):

* models (:mod:`billp.fidelity.models`): ranking, rating and reward-bias metrics of
  the LE, the classic matrix model and a ranking-fair BPR model on held-out interactions;
* real behaviour (:mod:`billp.fidelity.replay`): each test user's real held-out
  sequence replayed through both worlds: acceptance, quit reasons, survival, reward vs rating;
* policy order (:mod:`billp.fidelity.agreement`): non-oracle policies played in both
  worlds, Kendall's tau between the orders with a CI.

``python -m billp.le evaluate`` writes it as ``fidelity.json`` and ``fidelity.md``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from billp.common.atomic_io import write_bytes_atomic
from billp.config import EnvConfig, LEEvalConfig
from billp.data.dataset import Dataset
from billp.envs.ranking_model import fit_bpr_scores
from billp.envs.rating_model import load_or_fit_rating_matrix
from billp.envs.user_model import MatrixUserModel
from billp.envs.world import World
from billp.fidelity.agreement import (
    RL_POLICIES,
    policy_agreement,
    simple_policies,
)
from billp.fidelity.models import (
    bias_metrics,
    model_fidelity,
    ranking_metrics,
    rating_metrics,
    sample_test_users,
)
from billp.fidelity.replay import validate_world
from billp.fidelity.report import FidelityReport, QuitRuleSettings, render_markdown
from billp.le.checkpoint import REPORT_JSON, REPORT_MD, LEManifest
from billp.le.train import peak_rss_mib
from billp.le.user_model import LEUserModel, load_user_model
from billp.le.user_ratings import known_ratings
from billp.policy.protocol import Policy

logger = logging.getLogger(__name__)


def _rl_policies(
    dataset: Dataset, world: World, load_le: Any
) -> tuple[dict[str, Policy], dict[str, str]]:
    """The trained RL policies among :data:`RL_POLICIES` that exist, and why others do not."""
    from billp.rl.checkpoint import RLCheckpointError
    from billp.rl.policy import build_rl_policy

    policies: dict[str, Policy] = {}
    skipped: dict[str, str] = {}
    for name in RL_POLICIES:
        try:
            policies[name] = build_rl_policy(name, dataset.catalogue, world.state_model, load_le)
        except (RLCheckpointError, ImportError) as exc:
            skipped[name] = str(exc).splitlines()[0]
    return policies, skipped


def evaluate(
    dataset: Dataset, env_config: EnvConfig, config: LEEvalConfig, le: LEUserModel
) -> FidelityReport:
    """Measure the LE and the matrix world on the test users' held-out data, as ``config``
    says."""
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    cache_dir = Path(env_config.cache_dir) if env_config.cache_dir is not None else None
    matrix = MatrixUserModel(load_or_fit_rating_matrix(dataset, env_config.rating_model, cache_dir))
    bpr = fit_bpr_scores(dataset)
    users = sample_test_users(dataset, config.users, config.seed)
    logger.info("evaluating on %d test users", len(users))
    ranking, n_ranking = ranking_metrics(
        dataset, users, le, matrix, bpr, config.positions_per_user, config.negatives, rng
    )
    ratings, check = rating_metrics(dataset, users, le, matrix, config.rating_items_per_user)
    probes = bias_metrics(dataset, users, {"le": le, "matrix": matrix}, rng)
    worlds = {
        "matrix": World(dataset, matrix, env_config),
        "le": World(dataset, le, env_config, state_model=le),
    }
    replay = {
        name: validate_world(dataset, world.user_model, world.quit_rule, users, config.replay_items)
        for name, world in worlds.items()
    }
    policy_users = users[: config.policy_users]
    skipped: dict[str, str] = {}

    def build(world: World) -> dict[str, Policy]:
        policies = simple_policies(dataset, world, bpr)
        if config.rl_policies:
            trained, missing = _rl_policies(dataset, world, lambda: le)
            policies.update(trained)
            skipped.update(missing)
        return policies

    agreement = policy_agreement(worlds, build, policy_users, config.seed, skipped)
    manifest: LEManifest = le.loaded.manifest
    return FidelityReport(
        checkpoint=le.loaded.folder.name,
        dataset=dataset.name,
        base_model=manifest.base_model,
        test_users=len(users),
        ranking_instances=n_ranking,
        negatives=config.negatives,
        models=model_fidelity(ranking, ratings, probes),
        ratings=check,
        calibration={
            "x": le.calibration.x.tolist(),
            "y": le.calibration.y.tolist(),
            "extrapolate": le.calibration.extrapolate,
            "neighbour_weight": le.calibration.neighbour_weight,
        },
        quit_rule=QuitRuleSettings(
            window=env_config.quit_window,
            similarity_threshold=env_config.similarity_threshold,
            reward_threshold=env_config.quit_reward_threshold,
        ),
        replay=replay,
        replay_max_items=config.replay_items,
        agreement=agreement,
        training=manifest.training.model_dump() if manifest.training else None,
        evaluation_seconds=round(time.perf_counter() - started, 1),
        evaluation_peak_rss_mib=round(peak_rss_mib(), 1),
    )


def write_report(report: FidelityReport, folder: Path) -> None:
    """Write fidelity.json and fidelity.md into ``folder``."""
    write_bytes_atomic(
        folder / REPORT_JSON, (json.dumps(report.model_dump(), indent=2) + "\n").encode("utf-8")
    )
    write_bytes_atomic(folder / REPORT_MD, render_markdown(report).encode("utf-8"))


def evaluate_checkpoint(
    dataset: Dataset, env_config: EnvConfig, config: LEEvalConfig, out: Path | None
) -> FidelityReport:
    """Load the configured checkpoint, evaluate it as ``config`` says and write the report
    (default: beside the checkpoint)."""
    le = load_user_model(env_config.le, dataset.catalogue, known_ratings(dataset))
    report = evaluate(dataset, env_config, config, le)
    write_report(report, out if out is not None else le.loaded.folder)
    return report
