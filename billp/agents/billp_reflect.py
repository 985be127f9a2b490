"""BiLLP's Reflector: at an episode's end, a lesson for the episodes of similar users."""

from __future__ import annotations

from typing import Any

from billp.agents import reward_shuffle
from billp.agents.billp_state import EpisodeState
from billp.agents.billp_traces import ReflectionTrace
from billp.agents.echo import own_text, reject_echo
from billp.agents.messages import (
    Knowledge,
    Reflection,
    ReflectorInput,
    StepView,
    reflection_schema,
)
from billp.data import Catalogue
from billp.envs import genre_jaccard
from billp.memory import ReflectionEntry
from billp.policy import EpisodeSummary
from billp.policy.writes import ReflectionWrite


def describe_outcome(
    summary: EpisodeSummary,
    catalogue: Catalogue,
    info: dict[str, Any],
    knowledge: Knowledge = "informed",
) -> str:
    """A sentence saying how the episode ended, for the Reflector: with the reason the
    simulator gave when the agent is ``informed``, else only where the user left (the
    Reflector sees the session's movies, genres and ratings, and must find the reason)."""
    if summary.truncated and not summary.terminated:
        return f"the session reached the step cap after {len(summary.items)} recommendations"
    if not summary.items:
        return "the session ended before any recommendation"
    last = catalogue[summary.items[-1]].label
    if knowledge == "uninformed":
        return f"the user left right after recommendation {len(summary.items)}, {last}"
    reason = summary.quit_reason
    if reason == "low_reward":
        return f"the user left because they disliked {last} (reward {summary.rewards[-1]:.1f})"
    if reason in {"too_similar", "repeat"}:
        other = info.get("similar_to")
        other_label = catalogue[other].label if isinstance(other, int) else "a recent movie"
        what = "repeated" if reason == "repeat" else "was too similar to"
        return f"the user left because {last} {what} {other_label}"
    return f"the user left after {last}"


LESSON_GENRES = 2
"""Genres named among the highest and among the lowest rated in a lesson's facts."""


def genre_means(steps: list[StepView]) -> dict[str, float]:
    """The mean reward of the episode's movies of each genre they have."""
    ratings: dict[str, list[float]] = {}
    for step in steps:
        for genre in step.genres:
            ratings.setdefault(genre, []).append(step.reward)
    return {genre: sum(r) / len(r) for genre, r in ratings.items()}


def genre_lift(steps: list[StepView]) -> dict[str, float]:
    """Each genre's mean reward in the episode minus the episode's mean reward (over every
    step shown to the user, the one they left after included): what this user rated above
    and below their own session, measured rather than written by the Reflector's model."""
    if not steps:
        return {}
    mean = sum(s.reward for s in steps) / len(steps)
    return {genre: round(m - mean, 4) for genre, m in sorted(genre_means(steps).items())}


def step_jaccard(a: StepView, b: StepView) -> float:
    """The genre Jaccard similarity of two steps' movies (the quit rule's measure)."""
    return genre_jaccard(frozenset(a.genres), frozenset(b.genres))


def left_overlap(steps: list[StepView], left: bool) -> float | None:
    """How much the movie the user left after shared its genres with the one before it
    (Jaccard), when the user left after at least two movies; else None. A measured fact of
    what came right before leaving, for lessons."""
    if not left or len(steps) < 2:
        return None
    return round(step_jaccard(steps[-1], steps[-2]), 4)


def lesson_left_overlap(ep: EpisodeState, left: bool) -> float | None:
    """The lesson's :func:`left_overlap`; with ``memory.shuffle_leaving`` (a control), the
    overlap of a seeded random pair of consecutive steps before the last pair instead (None
    when the episode has no such pair)."""
    if not ep.p.memory_config.shuffle_leaving:
        return left_overlap(ep.steps, left)
    if not left or len(ep.steps) < 3:
        return None
    pair = int(reward_shuffle.permutation(ep, len(ep.steps) - 2, "shuffle-leaving")[0])
    return round(step_jaccard(ep.steps[pair + 1], ep.steps[pair]), 4)


def session_facts(steps: list[StepView], left: bool) -> str:
    """What the episode measured, in words, for the lesson: the genres its movies were rated
    highest and lowest in (mean rating per genre) and, when the user left, the last movie and
    the one before it with their genres and ratings. Facts, not the model's prior: they let
    later Planners see why users stayed and left, whatever the Reflector's model writes."""
    means = sorted(((m, g) for g, m in genre_means(steps).items()), key=lambda m: (-m[0], m[1]))
    parts = []
    if means:
        best = means[:LESSON_GENRES]
        parts.append("Rated highest: " + ", ".join(f"{g} {m:.1f}" for m, g in best) + ".")
        worst = [m for m in means[::-1][:LESSON_GENRES] if m not in best]
        if worst:
            parts.append("Rated lowest: " + ", ".join(f"{g} {m:.1f}" for m, g in worst) + ".")
    if left and steps:
        last = steps[-1]
        sentence = f"Left after {last.title} ({', '.join(last.genres)}) rated {last.reward:.1f}"
        if len(steps) > 1:
            before = steps[-2]
            sentence += f", which followed {before.title} ({', '.join(before.genres)})"
        parts.append(sentence + ".")
    return " ".join(parts)


async def reflect(ep: EpisodeState, summary: EpisodeSummary) -> ReflectionTrace:
    """Ask the Reflector for the episode's lesson and buffer it as a reflection write."""
    p, cfg = ep.p, ep.cfg
    outcome = describe_outcome(summary, p.catalogue, ep.quit_info, p.rules.knowledge)
    accepted = ep.steps[:-1] if summary.terminated else ep.steps
    total_reward = round(sum(s.reward for s in accepted), 4)
    result = await p.roles.reflector(
        ReflectorInput(
            history=p.labels(ep.history[-cfg.prompt_history_length :]),
            steps=ep.steps,
            outcome=outcome,
            length=len(accepted),
            total_reward=total_reward,
            genres=list(p.catalogue.genres),
            rules=p.rules,
            free_text=cfg.free_text,
        ),
        fallback=lambda: Reflection(
            reflection=f"Last time {outcome}; vary genres and follow the user's tastes."
        ),
        seed=ep.call_seed("reflector"),
        schema=reflection_schema(list(p.catalogue.genres), cfg.free_text),
        validate=lambda reflection: check_reflection(ep, reflection),
        repair=lambda raw: repair_reflection(ep, raw),
    )
    lesson = result.value.lesson()
    if cfg.lesson_facts:
        lesson = " ".join(filter(None, [lesson, session_facts(ep.steps, summary.terminated)]))
    ep.writes.reflections.append(
        ReflectionWrite(
            situation=p.state_text(ep.history[-cfg.state_window :]),
            entry=ReflectionEntry(
                text=lesson,
                user_id=ep.user_id,
                episode=ep.key,
                length=len(accepted),
                total_reward=total_reward,
                genre_lift=genre_lift(ep.steps),
                left_overlap=lesson_left_overlap(ep, summary.terminated),
            ),
        )
    )
    return ReflectionTrace(outcome=outcome, reflection=lesson, calls=[result.trace])


def check_reflection(ep: EpisodeState, reflection: Reflection) -> None:
    if not ep.cfg.free_text:
        if not (reflection.prefer or reflection.avoid):
            raise ValueError("name at least one genre to prefer or to avoid")
        return
    reject_echo(ep.p.reflector_echo, reflection.reflection, "the reflection is not a lesson")


def repair_reflection(ep: EpisodeState, raw: str) -> Reflection | None:
    text = own_text(ep.p.reflector_echo, raw) if ep.cfg.free_text else None
    return None if text is None else Reflection(reflection=text)
