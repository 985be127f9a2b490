"""``python -m billp.evaluation report``: one self-contained static HTML page.

The page holds the metrics table, the plots (PNG, inlined as base64) and a trajectory
browser. The browser's data (episodes, per-step plans, shortlists, choices, rewards,
value estimates, memory hits, quit explanations, item titles) is inlined as JSON and
rendered by a small vanilla script (``assets/report.js``). Nothing is fetched: a
Content-Security-Policy forbids every network request, so the file works offline and
from any folder. All text from runs is inserted with ``textContent``, never as HTML.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from billp.agents.billp_traces import BillpStepTrace, ReflectionTrace
from billp.agents.roles import CallTrace
from billp.evaluation.bootstrap import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from billp.evaluation.metrics import METRICS, run_features
from billp.evaluation.output import format_interval
from billp.evaluation.plots import all_figures, png_bytes
from billp.evaluation.series import Evaluation, SeriesResult, evaluate
from billp.policy.memoryless import RankedTrace
from billp.records import EpisodeRecord, EpisodeTraceRecord, StepRecord, StepTrace
from billp.records.read import RunData

REPORT_MAX_EPISODES = 500
"""Episodes per run in the trajectory browser unless --max-episodes says otherwise."""
RAW_REPLY_CHARS = 400
"""Characters of each raw LLM reply kept in the page."""
PLOT_TITLES: dict[str, str] = {
    "reward_per_step": "Reward per step",
    "survival": "Survival of episode length (Kaplan-Meier)",
    "length_histogram": "Episode length",
    "genre_mix": "Genre mix over steps",
}
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
"""Content-Security-Policy of the page: inline code and data: images only, no network."""


def _asset(name: str) -> str:
    return resources.files("billp.evaluation").joinpath("assets", name).read_text(encoding="utf-8")


# ------------------------------------------------------------------ trajectory data
def _call_view(call: CallTrace) -> dict[str, Any]:
    return {
        "role": call.role,
        "stage": call.stage,
        "error": call.error,
        "latency_s": call.latency_s,
        "raw": None if call.raw is None else call.raw[:RAW_REPLY_CHARS],
    }


def _value_view(trace: BillpStepTrace) -> dict[str, Any] | None:
    """The value estimate of the state the step acted in, and the learning signal."""
    out: dict[str, Any] = {}
    if trace.value is not None:
        out["source"] = trace.value.source
        out["v"] = trace.value.value
        if trace.value.similarity is not None:
            out["similarity"] = trace.value.similarity
    if trace.critic is not None:
        out["v"] = trace.critic.v
        out["v_next"] = trace.critic.v_next
        out["td_target"] = trace.critic.td_target
        out["advantage"] = trace.critic.advantage
        out["next_source"] = trace.critic.next.source
    return out or None


def _trace_view(trace: StepTrace) -> dict[str, Any]:
    """What the step's trace shows: plan, choice, shortlist, hints, value and LLM calls (a
    memoryless policy has a choice, a shortlist and the score it chose by)."""
    if isinstance(trace, RankedTrace):
        score = trace.choice.predicted_reward
        return {
            "plan": None,
            "choice": trace.choice.model_dump(),
            "shortlist": trace.shortlist,
            "shortlist_sources": None,
            "genre_hints": None,
            "memory_hits": None,
            "value": None if score is None else {"predicted_reward": score},
            "calls": [],
        }
    return {
        "plan": None if trace.plan is None else trace.plan.model_dump(),
        "choice": trace.choice.model_dump(),
        "shortlist": trace.shortlist,
        "shortlist_sources": trace.shortlist_sources,
        "genre_hints": trace.genre_hints,
        "memory_hits": None if trace.memory_hits is None else trace.memory_hits.model_dump(),
        "value": _value_view(trace),
        "calls": [_call_view(c) for c in trace.calls],
    }


def quit_explanation(step: StepRecord, run: RunData, label: dict[int, str]) -> str | None:
    """Why the user left on this step, in words (``None`` if they stayed)."""
    if step.terminated:
        reason = step.quit_reason
        item = label.get(step.action, f"item {step.action}")
        other = step.similar_to
        other_label = label.get(other, f"item {other}") if other is not None else None
        if reason == "low_reward":
            return (
                f"low reward: {item} was rated {step.reward}, below the threshold "
                f"{run.config.env.quit_reward_threshold}"
            )
        if reason == "too_similar":
            return (
                f"too similar: {item} has genres too close to {other_label} "
                f"(genre Jaccard >= {run.config.env.similarity_threshold})"
            )
        if reason == "repeat":
            return (
                f"repeat: {item} was already recommended in the last {run.config.env.quit_window}"
            )
        return f"quit ({reason})"
    if step.truncated:
        return f"step cap reached ({run.config.env.max_steps} steps): the episode was cut, not quit"
    return None


def _step_view(step: StepRecord, run: RunData, label: dict[int, str]) -> dict[str, Any]:
    return {
        "step": step.step,
        "action": step.action,
        "reward": step.reward,
        "terminated": step.terminated,
        "truncated": step.truncated,
        "quit_reason": step.quit_reason,
        "similar_to": step.similar_to,
        "quit_explanation": quit_explanation(step, run, label),
        **_trace_view(step.trace),
    }


def _carry_value_sources(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label each step's V(s) with where it came from: the previous step's V(s') source."""
    previous: str | None = None
    for step in steps:
        value = step.get("value")
        if isinstance(value, dict):
            if value.get("source") is None and previous is not None:
                value["source"] = previous
            previous = value.get("next_source")
    return steps


def _episode_view(
    episode: EpisodeRecord,
    steps: list[StepRecord],
    ended: ReflectionTrace | None,
    run: RunData,
    label: dict[int, str],
) -> dict[str, Any]:
    dataset = run.dataset()
    try:
        history = dataset.starting_history(episode.user_id)
    except (KeyError, ValueError, IndexError):
        history = []
    end = (
        "capped"
        if episode.capped
        else (episode.quit_reason or "quit")
        if episode.terminated
        else "unfinished"
    )
    return {
        "key": episode.key,
        "phase": episode.phase,
        "user_id": episode.user_id,
        "seed": episode.seed,
        "length": episode.length,
        "total_reward": episode.total_reward,
        "end": end,
        "history": [int(i) for i in history],
        "steps": _carry_value_sources([_step_view(s, run, label) for s in steps]),
        "outcome": None if ended is None else ended.outcome,
        "reflection": None if ended is None else ended.reflection,
        "episode_calls": [] if ended is None else [_call_view(c) for c in ended.calls],
    }


def _referenced_items(episodes: list[dict[str, Any]]) -> set[int]:
    ids: set[int] = set()
    for ep in episodes:
        ids.update(ep["history"])
        for s in ep["steps"]:
            for key in ("action", "similar_to"):
                if isinstance(s.get(key), int):
                    ids.add(s[key])
            ids.update(i for i in (s.get("shortlist") or []) if isinstance(i, int))
            hits = s.get("memory_hits") or {}
            for key in ("encouraged", "discouraged"):
                ids.update(i for i in hits.get(key, []) if isinstance(i, int))
    return ids


def run_view(
    run: RunData, run_label: str, max_episodes: int, label: dict[int, str]
) -> dict[str, Any]:
    """One run's browser data: metadata and its episodes with their steps."""
    by_episode: dict[str, list[StepRecord]] = {}
    ended: dict[str, ReflectionTrace] = {}
    for line in run.steps():
        if isinstance(line, EpisodeTraceRecord):
            ended[line.episode] = line.trace
        else:
            by_episode.setdefault(line.episode, []).append(line)
    ordered = run.phase_episodes("all")
    shown = ordered[:max_episodes]
    episodes = [
        _episode_view(
            ep,
            sorted(by_episode.get(ep.key, []), key=lambda s: s.step),
            ended.get(ep.key),
            run,
            label,
        )
        for ep in shown
    ]
    manifest = run.manifest
    return {
        "label": run_label,
        "name": run.name,
        "env": run.env,
        "agent": run.agent,
        "seed": run.seed,
        "cap": run.cap,
        "llm": manifest.get("llm"),
        "git_commit": manifest.get("git_commit"),
        "templates": run.templates(),
        "episodes": episodes,
        "omitted_episodes": len(ordered) - len(shown),
    }


# ------------------------------------------------------------------ HTML
def _metrics_rows(series: Sequence[SeriesResult], scope_title: str) -> str:
    head = "".join(
        f'<th title="{html.escape(m.description)}">{html.escape(m.label)}</th>' for m in METRICS
    )
    rows = []
    for s in series:
        cells = "".join(
            f"<td>{html.escape(format_interval(s.metrics[m.name], m.digits))}</td>" for m in METRICS
        )
        rows.append(
            f'<tr><th scope="row">{html.escape(s.label)}</th><td>{len(s.table)}</td>'
            f"<td>{html.escape(','.join(map(str, s.seeds)))}</td>{cells}</tr>"
        )
    return (
        f'<h3>{html.escape(scope_title)}</h3><div class="scroll"><table class="metrics">'
        f"<thead><tr><th>series</th><th>episodes</th><th>seeds</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _plots_html(evaluation: Evaluation) -> str:
    parts = []
    for name, fig in all_figures(evaluation.series()).items():
        encoded = base64.b64encode(png_bytes(fig)).decode("ascii")
        title = PLOT_TITLES[name]
        parts.append(
            f'<figure id="plot-{name}"><img alt="{html.escape(title)}" '
            f'src="data:image/png;base64,{encoded}"><figcaption>{html.escape(title)}</figcaption></figure>'
        )
    return "".join(parts)


def _json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_report(
    runs: Sequence[RunData],
    *,
    phase: str = "test",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    max_episodes: int | None = None,
    title: str = "billp evaluation report",
) -> str:
    """The report page as a string."""
    if not runs:
        raise ValueError("no run directories to report on")
    other = next((r for r in runs if r.config.data != runs[0].config.data), None)
    if other is not None:
        raise ValueError(
            f"{other.path} uses another dataset config than {runs[0].path}; "
            "report on runs of one dataset at a time (item titles are shared)"
        )
    evaluation = evaluate(runs, phase, resamples, seed)
    limit = REPORT_MAX_EPISODES if max_episodes is None else max(max_episodes, 0)
    label = {i: lab for i, lab in enumerate(run_features(runs[0]).labels)}
    views = [
        run_view(run, s.label, limit, label) for run, s in zip(runs, evaluation.runs, strict=True)
    ]
    features = run_features(runs[0])
    referenced: set[int] = set()
    for view in views:
        referenced |= _referenced_items(view["episodes"])
    items = {
        str(i): [
            label.get(i, f"item {i}"),
            [g for g, on in zip(features.genres, features.genre_matrix[i], strict=True) if on],
        ]
        for i in sorted(referenced)
        if 0 <= i < features.n_items
    }
    data = {"phase": phase, "runs": views, "items": items}
    metrics_html = _metrics_rows(evaluation.runs, "Runs (95% bootstrap CI over episodes)")
    if evaluation.has_seed_groups:
        metrics_html += _metrics_rows(
            evaluation.groups,
            "Groups of seeds (95% two-level bootstrap CI over seeds and episodes)",
        )
    definitions = "".join(
        f"<dt>{html.escape(m.label)}</dt><dd>{html.escape(m.description)}</dd>" for m in METRICS
    )
    replacements = {
        "__TITLE__": html.escape(title),
        "__CSP__": html.escape(CSP),
        "__CSS__": _asset("report.css"),
        "__GENERATED__": html.escape(time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        "__PHASE__": html.escape(phase),
        "__RESAMPLES__": str(resamples),
        "__RUNS__": "".join(f"<li><code>{html.escape(str(r.path))}</code></li>" for r in runs),
        "__METRICS__": metrics_html,
        "__DEFINITIONS__": definitions,
        "__PLOTS__": _plots_html(evaluation),
        "__DATA__": _json_for_script(data),
        "__JS__": _asset("report.js"),
    }
    # One pass, so text inserted from runs is never scanned for placeholders again.
    pattern = re.compile("|".join(re.escape(key) for key in replacements))
    return pattern.sub(lambda match: replacements[match.group(0)], _asset("report.html"))


def write_report(
    runs: Sequence[RunData],
    output: Path,
    *,
    phase: str = "test",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    max_episodes: int | None = None,
) -> Path:
    """Write the report page to ``output`` (parent folders are created)."""
    page = build_report(
        runs, phase=phase, resamples=resamples, seed=seed, max_episodes=max_episodes
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    return output
