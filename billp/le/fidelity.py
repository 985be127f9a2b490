"""The fidelity report: the LE against the classic matrix simulator on the same held-out split.

Everything is measured on test users (never seen in LE training), on their held-out
interactions (never seen by either model):

* ranking: each held-out item against ``negatives`` items the user never interacted with; AUC,
  HR@10 and NDCG@10. The LE ranks by its raw score psi, the matrix model by its rating.
* ratings: RMSE and Spearman rho of the (calibrated) reward against the held-out ratings.
* bias: Spearman rho between the reward of random items and their popularity; the reward of a
  repeated item (the last and a random history item) next to that of a fresh random item.
* policies: random, popularity, greedy-on-matrix and greedy-on-LE, each played in both
  simulators; Kendall's tau-b between the two orders of mean R_traj.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from billp.atomic_io import write_bytes_atomic
from billp.config import EnvConfig
from billp.data.dataset import Dataset
from billp.envs.rating_model import load_or_fit_rating_matrix
from billp.envs.user_model import MatrixUserModel, UserModel
from billp.envs.world import World
from billp.le.checkpoint import REPORT_JSON, REPORT_MD, LEManifest
from billp.le.rollout import PooledLEScores, rollout
from billp.le.scoring import score_logged
from billp.le.stats import kendall_tau_b, rank_metrics, spearman
from billp.le.train import peak_rss_mib
from billp.le.user_model import LEUserModel, load_user_model

logger = logging.getLogger(__name__)

TOP_K = 10
POPULARITY_ITEMS_PER_USER = 20
"""Random items per test user whose reward is correlated with popularity."""
POLICIES = ("random", "popularity", "greedy-matrix", "greedy-le")
MODELS = ("le", "matrix")


class ModelFidelity(BaseModel):
    """One simulator's numbers."""

    auc: float
    hr_at_10: float
    ndcg_at_10: float
    rating_rmse: float
    rating_spearman: float
    reward_popularity_spearman: float
    mean_reward_random_item: float
    mean_reward_repeat_last: float
    mean_reward_repeat_random: float


class PolicyResult(BaseModel):
    mean_return: float
    mean_length: float
    quit_reasons: dict[str, int]


class FidelityReport(BaseModel):
    """What ``python -m billp.le evaluate`` writes (fidelity.json) and renders (fidelity.md)."""

    checkpoint: str
    """The checkpoint folder's name (the report is written beside it by default)."""
    dataset: str
    base_model: str
    test_users: int
    ranking_instances: int
    rating_points: int
    negatives: int
    greedy_pool: int
    policy_users: int
    max_steps: int
    models: dict[str, ModelFidelity]
    constant_rating_rmse: float
    data_rating_popularity_spearman: float
    policies: dict[str, dict[str, PolicyResult]]
    kendall_tau: float
    calibration_range: list[float]
    """Lowest and highest reward the LE's calibration can give."""
    quit_reward_threshold: float
    training: dict[str, Any] | None
    evaluation_seconds: float
    evaluation_peak_rss_mib: float

    @property
    def markdown(self) -> str:
        return render_markdown(self)


def _test_users(dataset: Dataset, count: int | None, seed: int) -> list[int]:
    users = np.asarray(dataset.split.test_users, dtype=np.int64)
    if count is not None and count < len(users):
        users = np.random.default_rng(seed).choice(users, size=count, replace=False)
    return sorted(int(u) for u in users)


def _user_sequences(dataset: Dataset, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    heldout = dataset.heldout_interactions
    mask = heldout.users == user
    return dataset.user_log(user).items, heldout.items[mask], heldout.ratings[mask]


def _unseen(dataset: Dataset, user: int) -> np.ndarray:
    interactions = dataset.interactions
    seen = np.zeros(len(dataset.catalogue), dtype=bool)
    seen[interactions.items[interactions.users == user]] = True
    return np.flatnonzero(~seen)


def ranking_metrics(
    dataset: Dataset,
    users: list[int],
    le: LEUserModel,
    matrix: MatrixUserModel,
    positions: int,
    negatives: int,
    rng: np.random.Generator,
) -> tuple[dict[str, tuple[float, float, float]], int]:
    """Mean AUC, HR@10, NDCG@10 per model over held-out positives with sampled negatives."""
    values: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODELS}
    for user in users:
        train_items, held_items, _ = _user_sequences(dataset, user)
        unseen = _unseen(dataset, user)
        if len(train_items) == 0 or len(unseen) < negatives:
            continue
        sequence = np.concatenate([train_items, held_items])
        for k in range(min(positions, len(held_items))):
            index = len(train_items) + k
            positive = int(sequence[index])
            sampled = rng.choice(unseen, size=negatives, replace=False)
            candidates = [positive, *(int(i) for i in sampled)]
            history = [int(i) for i in sequence[:index]]
            scores = le.raw_scores(history, candidates)
            values["le"].append(rank_metrics(float(scores[0]), scores[1:], TOP_K))
            ratings = matrix.rewards(user, history, candidates)
            values["matrix"].append(rank_metrics(float(ratings[0]), ratings[1:], TOP_K))
    means = {m: tuple(float(x) for x in np.mean(np.asarray(v), axis=0)) for m, v in values.items()}
    return means, len(values["le"])  # type: ignore[return-value]


def rating_metrics(
    dataset: Dataset, users: list[int], le: LEUserModel, matrix: MatrixUserModel, per_user: int
) -> tuple[dict[str, tuple[float, float]], float, float, int]:
    """RMSE and Spearman rho per model on held-out ratings; the constant-mean RMSE; and the
    data's own Spearman rho between rating and item popularity."""
    sequences, targets, truth, owners = [], [], [], []
    for user in users:
        train_items, held_items, held_ratings = _user_sequences(dataset, user)
        if len(train_items) == 0 or len(held_items) == 0:
            continue
        count = min(per_user, len(held_items))
        sequences.append([int(i) for i in np.concatenate([train_items, held_items])])
        targets.append(list(range(len(train_items), len(train_items) + count)))
        truth.append(np.asarray(held_ratings[:count], dtype=np.float64))
        owners.append(user)
    raw = score_logged(le.model, le.prompt_ids, sequences, targets, le.context_items)
    le_pred = np.clip(le.calibration(np.concatenate(raw)), 1.0, 5.0)
    matrix_pred = np.concatenate(
        [
            matrix.matrix[user, [seq[t] for t in tgt]]
            for user, seq, tgt in zip(owners, sequences, targets, strict=True)
        ]
    )
    y = np.concatenate(truth)
    items = np.concatenate(
        [[seq[t] for t in tgt] for seq, tgt in zip(sequences, targets, strict=True)]
    )

    def rmse(prediction: np.ndarray) -> float:
        return float(np.sqrt(np.mean((prediction - y) ** 2)))

    train_mean = float(np.mean(dataset.train_interactions.ratings))
    result = {
        "le": (rmse(le_pred), spearman(le_pred, y)),
        "matrix": (rmse(matrix_pred), spearman(matrix_pred, y)),
    }
    popularity = dataset.item_popularity[items.astype(np.int64)]
    return result, rmse(np.full_like(y, train_mean)), spearman(y, popularity), int(y.size)


def bias_metrics(
    dataset: Dataset,
    users: list[int],
    models: dict[str, UserModel],
    rng: np.random.Generator,
) -> dict[str, tuple[float, float, float, float]]:
    """Per model: Spearman(reward, popularity) over random items, and the mean rewards of a
    random item, of repeating the last history item and of repeating a recent history item.
    Every model scores the same users, histories and items."""
    probes = []
    for user in users:
        history = [int(i) for i in dataset.user_log(user).items]
        if not history:
            continue
        drawn = rng.choice(len(dataset.catalogue), size=POPULARITY_ITEMS_PER_USER, replace=False)
        recent = history[-POPULARITY_ITEMS_PER_USER:]
        repeat = int(recent[int(rng.integers(len(recent)))])
        probes.append((user, history, [int(i) for i in drawn], repeat))
    out = {}
    for name, model in models.items():
        rewards: list[np.ndarray] = []
        popularity: list[np.ndarray] = []
        fresh: list[float] = []
        repeat_last: list[float] = []
        repeat_random: list[float] = []
        for user, history, items, repeat in probes:
            scores = np.asarray(model.rewards(user, history, [*items, history[-1], repeat]))
            rewards.append(scores[:-2])
            popularity.append(dataset.item_popularity[items])
            fresh.append(float(np.mean(scores[:-2])))
            repeat_last.append(float(scores[-2]))
            repeat_random.append(float(scores[-1]))
        out[name] = (
            spearman(np.concatenate(rewards), np.concatenate(popularity)),
            float(np.mean(fresh)),
            float(np.mean(repeat_last)),
            float(np.mean(repeat_random)),
        )
    return out


def policy_ranking(
    dataset: Dataset,
    env_config: EnvConfig,
    le: LEUserModel,
    matrix: MatrixUserModel,
    users: list[int],
    pool: int,
    seed: int,
) -> tuple[dict[str, dict[str, PolicyResult]], float]:
    """Mean R_traj of the four policies in both simulators, and Kendall's tau-b."""
    from billp.agents.baselines import GreedyPolicy, PopularityPolicy, RandomPolicy

    catalogue = dataset.catalogue
    policies = {
        "random": RandomPolicy(catalogue),
        "popularity": PopularityPolicy(catalogue, dataset.item_popularity),
        "greedy-matrix": GreedyPolicy(catalogue, matrix),
        "greedy-le": GreedyPolicy(catalogue, PooledLEScores(le, pool)),  # type: ignore[arg-type]
    }
    worlds = {
        "matrix": World(dataset, matrix, env_config),
        "le": World(dataset, le, env_config, state_model=le),
    }
    results: dict[str, dict[str, PolicyResult]] = {}
    for world_name, world in worlds.items():
        results[world_name] = {}
        for policy_name, policy in policies.items():
            started = time.perf_counter()
            episodes = rollout(policy, world, users, seed)
            reasons: dict[str, int] = {}
            for episode in episodes:
                key = episode.quit_reason or "step_cap"
                reasons[key] = reasons.get(key, 0) + 1
            results[world_name][policy_name] = PolicyResult(
                mean_return=float(np.mean([e.total for e in episodes])),
                mean_length=float(np.mean([len(e.items) for e in episodes])),
                quit_reasons=reasons,
            )
            logger.info(
                "%s in the %s simulator: mean R_traj %.2f over %d users (%.0f s)",
                policy_name,
                world_name,
                results[world_name][policy_name].mean_return,
                len(users),
                time.perf_counter() - started,
            )
    tau = kendall_tau_b(
        [results["matrix"][p].mean_return for p in POLICIES],
        [results["le"][p].mean_return for p in POLICIES],
    )
    return results, tau


def evaluate(dataset: Dataset, env_config: EnvConfig, le: LEUserModel) -> FidelityReport:
    """Measure the LE and the matrix model on the test users' held-out data."""
    started = time.perf_counter()
    config = env_config.le.evaluate
    rng = np.random.default_rng(config.seed)
    cache_dir = Path(env_config.cache_dir) if env_config.cache_dir is not None else None
    matrix = MatrixUserModel(load_or_fit_rating_matrix(dataset, env_config.rating_model, cache_dir))
    users = _test_users(dataset, config.users, config.seed)
    logger.info("evaluating on %d test users", len(users))
    ranking, n_ranking = ranking_metrics(
        dataset, users, le, matrix, config.positions_per_user, config.negatives, rng
    )
    ratings, constant_rmse, data_popularity, n_ratings = rating_metrics(
        dataset, users, le, matrix, config.rating_items_per_user
    )
    bias = bias_metrics(dataset, users, {"le": le, "matrix": matrix}, rng)
    policy_users = users[: config.policy_users]
    policies, tau = policy_ranking(
        dataset, env_config, le, matrix, policy_users, config.greedy_pool, config.seed
    )
    models = {
        name: ModelFidelity(
            auc=ranking[name][0],
            hr_at_10=ranking[name][1],
            ndcg_at_10=ranking[name][2],
            rating_rmse=ratings[name][0],
            rating_spearman=ratings[name][1],
            reward_popularity_spearman=bias[name][0],
            mean_reward_random_item=bias[name][1],
            mean_reward_repeat_last=bias[name][2],
            mean_reward_repeat_random=bias[name][3],
        )
        for name in MODELS
    }
    manifest: LEManifest = le.loaded.manifest
    return FidelityReport(
        checkpoint=le.loaded.folder.name,
        dataset=dataset.name,
        base_model=manifest.base_model,
        test_users=len(users),
        ranking_instances=n_ranking,
        rating_points=n_ratings,
        negatives=config.negatives,
        greedy_pool=config.greedy_pool,
        policy_users=len(policy_users),
        max_steps=env_config.max_steps,
        models=models,
        constant_rating_rmse=constant_rmse,
        data_rating_popularity_spearman=data_popularity,
        policies=policies,
        kendall_tau=tau,
        calibration_range=[float(le.calibration.y.min()), float(le.calibration.y.max())],
        quit_reward_threshold=env_config.quit_reward_threshold,
        training=manifest.training.model_dump() if manifest.training else None,
        evaluation_seconds=round(time.perf_counter() - started, 1),
        evaluation_peak_rss_mib=round(peak_rss_mib(), 1),
    )


def _f(value: float, digits: int = 3) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _notes(report: FidelityReport) -> list[str]:
    """Readings of the numbers that follow from how each model is built."""
    le, mx = report.models["le"], report.models["matrix"]
    low, high = report.calibration_range
    notes = [
        "## Notes",
        "",
        f"- The LE's calibrated reward spans [{low:.2f}, {high:.2f}]. The calibration only sees "
        "items users chose to rate, so items the reward model ranks below all of them get the "
        f"lowest block's mean rating ({low:.2f}); the matrix model instead extrapolates its "
        "factors to unrated pairs.",
    ]
    if low >= report.quit_reward_threshold:
        notes.append(
            f"- That floor is at or above the quit threshold ({report.quit_reward_threshold:g}), "
            "so in the LE simulator users never leave for a low reward; they leave on repeats "
            "and too-similar items."
        )
    if le.rating_spearman < mx.rating_spearman:
        notes.append(
            f"- Rating fidelity falls short of the matrix model (Spearman {le.rating_spearman:.3f} "
            f"vs {mx.rating_spearman:.3f}, RMSE {le.rating_rmse:.3f} vs {mx.rating_rmse:.3f}): "
            "psi is trained to tell the next watched item from unwatched ones, and ratings enter "
            "only through the pairwise rating term and the calibration, whereas the matrix "
            "model is fitted to the ratings themselves."
        )
    if le.auc >= mx.auc:
        notes.append(
            "- Ranking fidelity is the LE's strength: the matrix model predicts how much a user "
            "would like an item, not whether they would pick it, so it ranks watched items "
            "barely above random ones."
        )
    if le.reward_popularity_spearman > report.data_rating_popularity_spearman:
        notes.append(
            f"- The LE rewards popularity more than the data does (Spearman "
            f"{le.reward_popularity_spearman:.3f} vs {report.data_rating_popularity_spearman:.3f} "
            "between held-out rating and popularity): being watched next correlates with "
            "popularity, and half the negatives are uniform."
        )
    if le.mean_reward_repeat_last > le.mean_reward_random_item:
        notes.append(
            "- Repeated items are not penalised by the reward (the logs hold no repeats to learn "
            "from); the quit rule ends the episode on a repeat in both simulators."
        )
    reasons: dict[str, int] = {}
    for simulator in report.policies.values():
        for result in simulator.values():
            for reason, count in result.quit_reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
    total = sum(reasons.values())
    if total:
        top, count = max(reasons.items(), key=lambda pair: pair[1])
        notes.append(
            f"- In the policy ranking, {count / total:.0%} of all episodes ended with "
            f"'{top}', so R_traj mostly measures episode length; Kendall's tau over four "
            "policies moves in steps of 1/3."
        )
    return [*notes, ""]


def render_markdown(report: FidelityReport) -> str:
    """The report as a markdown page."""
    le, mx = report.models["le"], report.models["matrix"]
    rows = [
        ("AUC (1 positive vs sampled negatives)", le.auc, mx.auc),
        ("HR@10", le.hr_at_10, mx.hr_at_10),
        ("NDCG@10", le.ndcg_at_10, mx.ndcg_at_10),
        ("rating RMSE (after calibration)", le.rating_rmse, mx.rating_rmse),
        ("rating Spearman rho", le.rating_spearman, mx.rating_spearman),
        (
            "Spearman rho(reward, item popularity)",
            le.reward_popularity_spearman,
            mx.reward_popularity_spearman,
        ),
        ("mean reward, random item", le.mean_reward_random_item, mx.mean_reward_random_item),
        (
            "mean reward, repeat of the last history item",
            le.mean_reward_repeat_last,
            mx.mean_reward_repeat_last,
        ),
        (
            "mean reward, repeat of a recent history item",
            le.mean_reward_repeat_random,
            mx.mean_reward_repeat_random,
        ),
    ]
    lines = [
        f"# Fidelity of the LE checkpoint `{Path(report.checkpoint).name}`",
        "",
        f"Dataset `{report.dataset}`, base model `{report.base_model}`. Held-out interactions of "
        f"{report.test_users} test users (never used to train the LE): {report.ranking_instances} "
        f"ranking instances (1 held-out positive vs {report.negatives} sampled unseen items), "
        f"{report.rating_points} held-out ratings.",
        "",
        "| metric | LE | matrix (MF) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {_f(a)} | {_f(b)} |" for name, a, b in rows]
    gap = le.auc - mx.auc
    verdict = "meets" if gap >= 0 else f"falls short of the goal by {-gap:.3f}"
    lines += [
        "",
        f"LE AUC minus matrix AUC: {gap:+.3f} (the goal LE >= matrix {verdict}).",
        "Predicting the train mean rating everywhere gives RMSE "
        f"{_f(report.constant_rating_rmse)}; "
        f"in the held-out data itself, Spearman rho(rating, popularity) = "
        f"{_f(report.data_rating_popularity_spearman)}.",
        "The LE ranks by its raw score psi; its rewards are psi mapped by the isotonic "
        "calibration (monotone, so the ranking metrics are those of the calibrated reward up to "
        "ties in its flat ends).",
        "",
        f"## Policy ranking by R_traj ({report.policy_users} test users, at most "
        f"{report.max_steps} steps)",
        "",
        "| policy | R_traj in matrix sim | length | R_traj in LE sim | length |",
        "|---|---|---|---|---|",
    ]
    for policy in POLICIES:
        m, e = report.policies["matrix"][policy], report.policies["le"][policy]
        lines.append(
            f"| {policy} | {_f(m.mean_return, 2)} | {_f(m.mean_length, 1)} | "
            f"{_f(e.mean_return, 2)} | {_f(e.mean_length, 1)} |"
        )
    lines += [
        "",
        f"Kendall tau-b between the two orders: **{_f(report.kendall_tau)}**.",
        f"Greedy-on-LE scores a pool of {report.greedy_pool} unseen items per step (those "
        "nearest to the LE state), not the whole catalogue: full-catalogue scoring costs seconds "
        "per step on CPU.",
        "",
    ]
    lines += _notes(report)
    if report.training:
        training = report.training
        seconds = training.get("seconds", {})
        lines += [
            "## Training cost",
            "",
            f"Total {_f(seconds.get('total', math.nan) / 60.0, 1)} min wall, "
            f"{_f(training.get('cpu_seconds', math.nan) / 60.0, 1)} min CPU, on "
            f"{training.get('threads')} "
            f"CPU threads (item tokens {_f(seconds.get('item_tokens', math.nan), 0)} s, "
            f"state/reward {_f(seconds.get('state_reward', math.nan), 0)} s, calibration "
            f"{_f(seconds.get('calibration', math.nan), 0)} s); peak RSS "
            f"{_f(training.get('peak_rss_mib', math.nan), 0)} MiB; {training.get('item_steps')} "
            f"item-token steps, {training.get('lora_steps')} state/reward steps, "
            f"{training.get('train_users')} training users, {training.get('calibration_points')} "
            f"calibration ratings; budget exhausted: {training.get('budget_exhausted')}.",
            "",
        ]
    lines += [
        f"Evaluation took {_f(report.evaluation_seconds / 60.0, 1)} min (peak RSS "
        f"{_f(report.evaluation_peak_rss_mib, 0)} MiB).",
        "",
    ]
    return "\n".join(lines)


def write_report(report: FidelityReport, folder: Path) -> None:
    """Write fidelity.json and fidelity.md into ``folder``."""
    write_bytes_atomic(
        folder / REPORT_JSON, (json.dumps(report.model_dump(), indent=2) + "\n").encode("utf-8")
    )
    write_bytes_atomic(folder / REPORT_MD, report.markdown.encode("utf-8"))


def evaluate_checkpoint(
    dataset: Dataset, env_config: EnvConfig, out: Path | None
) -> FidelityReport:
    """Load the configured checkpoint, evaluate it and write the report (default: beside it)."""
    le = load_user_model(env_config.le, dataset.catalogue)
    report = evaluate(dataset, env_config, le)
    write_report(report, out if out is not None else le.loaded.folder)
    return report
