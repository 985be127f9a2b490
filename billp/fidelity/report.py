"""The fidelity report: what ``fidelity.json`` holds (the models' metrics, the replay of real
sequences, the policy-order agreement and the settings they used; computed by
:mod:`billp.fidelity.checkpoint`) and the markdown page ``fidelity.md`` that shows it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from billp.fidelity.agreement import Agreement, kendall_tau_b
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


# ------------------------------------------------------------------ fidelity.md
AUC_GOAL = 0.88
POPULARITY_GAP_GOAL = 0.10
SPAN_GOAL = (1.5, 4.8)
ACCEPTANCE_GOAL = 0.80
TAU_GOAL = 0.6


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _model_table(report: FidelityReport) -> list[str]:
    le, mx, bpr = report.models["le"], report.models["matrix"], report.models.get("bpr")
    rows: list[tuple[str, str, str, str]] = []

    def add(name: str, attribute: str, digits: int = 3) -> None:
        values = [getattr(m, attribute) if m is not None else None for m in (le, mx, bpr)]
        rows.append((name, *(_f(v, digits) for v in values)))  # type: ignore[arg-type]

    add("AUC (1 positive vs sampled negatives)", "auc")
    add("HR@10", "hr_at_10")
    add("NDCG@10", "ndcg_at_10")
    add("rating RMSE", "rating_rmse")
    add("rating Spearman rho", "rating_spearman")
    add("Spearman rho(reward, item popularity)", "reward_popularity_spearman")
    add("mean reward, random item", "mean_reward_random_item")
    add("mean reward, repeat of the last history item", "mean_reward_repeat_last")
    add("mean reward, repeat of a recent history item", "mean_reward_repeat_random")
    add("share of random-item rewards below 2", "reward_share_below_2")
    spans = [
        f"[{m.reward_range[0]:.2f}, {m.reward_range[1]:.2f}]"
        if m is not None and m.reward_range
        else "n/a"
        for m in (le, mx, bpr)
    ]
    rows.append(("reward range over the probes", *spans))  # type: ignore[arg-type]
    lines = [
        "| metric | LE | matrix (MF, ratings) | matrix (BPR, ranking) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {a} | {b} | {c} |" for name, a, b, c in rows]
    return lines


def _goals(report: FidelityReport) -> list[str]:
    le, mx = report.models["le"], report.models["matrix"]
    check = report.ratings
    low, high = le.reward_range or [math.nan, math.nan]
    le_reasons = _reasons(report, "le")
    replay_low = report.replay["le"].verdicts.get("low_reward", 0)
    gap = abs((le.reward_popularity_spearman or math.nan) - check.data_popularity_spearman)
    acceptance = {w: s.acceptance.value for w, s in report.replay.items()}
    agreement = report.agreement
    rows = [
        (
            "LE rating RMSE <= MF's",
            f"{_f(le.rating_rmse)} vs {_f(mx.rating_rmse)}",
            (le.rating_rmse or math.inf) <= (mx.rating_rmse or -math.inf),
        ),
        (
            "LE rating Spearman >= MF's",
            f"{_f(le.rating_spearman)} vs {_f(mx.rating_spearman)}",
            (le.rating_spearman or -math.inf) >= (mx.rating_spearman or math.inf),
        ),
        (f"LE AUC >= {AUC_GOAL}", _f(le.auc), le.auc >= AUC_GOAL),
        (
            f"reward-popularity rho within {POPULARITY_GAP_GOAL} of the data's",
            f"{_f(le.reward_popularity_spearman)} vs {_f(check.data_popularity_spearman)}",
            gap <= POPULARITY_GAP_GOAL,
        ),
        (
            f"LE reward spans at least [{SPAN_GOAL[0]}, {SPAN_GOAL[1]}]",
            f"[{low:.2f}, {high:.2f}]",
            low <= SPAN_GOAL[0] and high >= SPAN_GOAL[1],
        ),
        (
            "the low-reward quit fires in the LE world",
            f"{le_reasons.get('low_reward', 0)} policy episodes, {replay_low} replayed items",
            le_reasons.get("low_reward", 0) + replay_low > 0,
        ),
    ]
    rows += [
        (
            f"{world} world accepts >= {ACCEPTANCE_GOAL:.0%} of real next items",
            _f(value),
            value >= ACCEPTANCE_GOAL,
        )
        for world, value in acceptance.items()
    ]
    n_policies = len(next(iter(agreement.policies.values()), {}))
    rows.append(
        (
            f"Kendall tau >= {TAU_GOAL} over >= 6 non-oracle policies",
            f"{_f(agreement.kendall_tau)} [{_f(agreement.tau_ci[0])}, "
            f"{_f(agreement.tau_ci[1])}] over {n_policies}",
            agreement.kendall_tau >= TAU_GOAL and n_policies >= 6,
        )
    )
    lines = ["## Goals", "", "| goal | measured | |", "|---|---|---|"]
    lines += [f"| {goal} | {value} | {_met(ok)} |" for goal, value, ok in rows]
    return [*lines, ""]


def _reasons(report: FidelityReport, world: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for result in report.agreement.policies.get(world, {}).values():
        for reason, count in result.quit_reasons.items():
            total[reason] = total.get(reason, 0) + count
    return total


def _replay_table(report: FidelityReport) -> list[str]:
    rule = report.quit_rule
    lines = [
        "## Real behaviour replayed through each world",
        "",
        f"Each test user's first {report.replay_max_items} held-out items, in their real "
        "order, recommended one after the other from the user's starting history. Quit rule: "
        f"a repeat or genre Jaccard >= {rule.similarity_threshold:g} with one of the last "
        f"{rule.window} items, or a reward below {rule.reward_threshold:g}. Intervals: 95 % over "
        "user resamples.",
        "",
        "| world | accepted | verdicts | survival (items) | mean sequence | reward vs rating: "
        "RMSE | Spearman | mean reward / rating |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for world, stats in report.replay.items():
        verdicts = ", ".join(f"{k} {v}" for k, v in stats.verdicts.items())
        lines.append(
            f"| {world} | {_f(stats.acceptance.value)} [{_f(stats.acceptance.low)}, "
            f"{_f(stats.acceptance.high)}] | {verdicts} | {_f(stats.survival.value, 2)} "
            f"[{_f(stats.survival.low, 2)}, {_f(stats.survival.high, 2)}] | "
            f"{_f(stats.sequence_length, 1)} | {_f(stats.reward_rmse)} | "
            f"{_f(stats.reward_spearman)} | {_f(stats.mean_reward, 2)} / "
            f"{_f(stats.mean_rating, 2)} |"
        )
    return [*lines, ""]


def _policy_table(report: FidelityReport) -> list[str]:
    agreement = report.agreement
    worlds = list(agreement.policies)
    lines = [
        f"## Policy order ({len(agreement.users)} test users, at most {agreement.max_steps} steps)",
        "",
        "No policy ranks by the reward model of the world it plays in (no oracle).",
        "",
        "| policy | " + " | ".join(f"R_traj ({w}) | length ({w})" for w in worlds) + " |",
        "|---|" + "---|---|" * len(worlds),
    ]
    names = list(agreement.policies[worlds[0]]) if worlds else []
    for name in names:
        cells = []
        for world in worlds:
            result = agreement.policies[world].get(name)
            cells += [_f(result.mean_return, 2), _f(result.mean_length, 1)] if result else ["", ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    per_step = _reward_per_step_tau(report)
    lines += [
        "",
        f"Kendall tau-b between the two orders: **{_f(agreement.kendall_tau)}** (95 % CI "
        f"[{_f(agreement.tau_ci[0])}, {_f(agreement.tau_ci[1])}] over user resamples).",
        "Both worlds share the quit rule, so episode length (and with it R_traj) agrees in part "
        "by construction; the order of reward per step (mean R_traj / mean length), which only "
        f"the reward models decide, gives tau-b = {_f(per_step)}.",
    ]
    for world in worlds:
        reasons = _reasons(report, world)
        total = sum(reasons.values()) or 1
        mix = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(reasons.items()))
        lines.append(f"How episodes ended in the {world} world: {mix}.")
    for name, why in agreement.skipped.items():
        lines.append(f"Skipped {name}: {why}")
    return [*lines, ""]


def _reward_per_step_tau(report: FidelityReport) -> float:
    worlds = list(report.agreement.policies)
    if len(worlds) != 2:
        return math.nan
    first, second = (report.agreement.policies[w] for w in worlds)
    names = [name for name in first if name in second]
    return kendall_tau_b(
        [first[n].mean_return / max(first[n].mean_length, 1e-9) for n in names],
        [second[n].mean_return / max(second[n].mean_length, 1e-9) for n in names],
    )


def _training(report: FidelityReport) -> list[str]:
    training = report.training
    if not training:
        return []
    seconds = training.get("seconds", {})
    return [
        "## Training cost",
        "",
        f"Total {_f(seconds.get('total', math.nan) / 60.0, 1)} min wall, "
        f"{_f(training.get('cpu_seconds', math.nan) / 60.0, 1)} min CPU, on "
        f"{training.get('threads')} CPU threads (item tokens "
        f"{_f(seconds.get('item_tokens', math.nan), 0)} s, state/reward "
        f"{_f(seconds.get('state_reward', math.nan), 0)} s, calibration "
        f"{_f(seconds.get('calibration', math.nan), 0)} s); peak RSS "
        f"{_f(training.get('peak_rss_mib', math.nan), 0)} MiB; {training.get('item_steps')} "
        f"item-token steps, {training.get('lora_steps')} state/reward steps, "
        f"{training.get('train_users')} training users, {training.get('calibration_points')} "
        f"calibration ratings; budget exhausted: {training.get('budget_exhausted')}.",
        "",
    ]


def render_markdown(report: FidelityReport) -> str:
    """The report as a markdown page."""
    check = report.ratings
    calibration = report.calibration
    lines = [
        f"# Fidelity of the LE checkpoint `{Path(report.checkpoint).name}`",
        "",
        f"Dataset `{report.dataset}`, base model `{report.base_model}`. Held-out interactions "
        f"(never used to train any model) of {report.test_users} test users: "
        f"{report.ranking_instances} ranking instances (1 held-out positive vs "
        f"{report.negatives} sampled unseen items), {check.points} held-out ratings.",
        "",
        *_model_table(report),
        "",
        f"Predicting the train mean rating everywhere gives RMSE {_f(check.constant_rmse)}; in "
        "the held-out data, Spearman rho(rating, popularity) = "
        f"{_f(check.data_popularity_spearman)}. The LE ranks by its choice score psi and "
        "rewards with its predicted rating, mapped by a "
        + ("linear, extrapolating" if calibration.get("extrapolate") else "flat-ended")
        + " calibration (knots "
        + ", ".join(
            f"{x:.2f} -> {y:.2f}" for x, y in zip(calibration["x"], calibration["y"], strict=True)
        )
        + ")"
        + (
            f", plus {calibration['neighbour_weight']:.3f} x the neighbourhood term (the user's "
            "rating residuals on their rated items most similar to the candidate)"
            if calibration.get("neighbour_weight")
            else ""
        )
        + ". The BPR model ranks only: it has no rating scale.",
        "",
        *_goals(report),
        *_replay_table(report),
        *_policy_table(report),
        *_training(report),
        f"Evaluation took {_f(report.evaluation_seconds / 60.0, 1)} min (peak RSS "
        f"{_f(report.evaluation_peak_rss_mib, 0)} MiB).",
        "",
    ]
    return "\n".join(lines)
