"""BiLLP's step: the Planner's plan, the shortlist it and the memories shape, and the
Actor's choice among the shortlist."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import TypeVar

from billp.agents.billp_critic import estimate_value
from billp.agents.billp_state import EpisodeState
from billp.agents.billp_traces import BillpStepTrace, MemoryHits, PlannedStep, ValueEstimate
from billp.agents.echo import own_text, reject_echo
from billp.agents.genre_order import planner_genres
from billp.agents.loop_trace import HintShown, LoopTrace
from billp.agents.messages import (
    ActorChoice,
    ActorInput,
    CandidateView,
    Plan,
    PlannerInput,
    actor_choices,
    actor_schema,
    plan_choices,
    plan_schema,
)
from billp.agents.roles import CallTrace
from billp.agents.shortlist import exploration_genres
from billp.policy import Decision

FALLBACK_PLAN = "Recommend a well-liked movie from genres the user has not seen recently."
"""Plan used when the Planner's reply cannot be used."""
_INTEGER = re.compile(r"-?\d+")
T = TypeVar("T")


async def plan_step(ep: EpisodeState) -> PlannedStep:
    """Ask the Planner for the coming step's plan (nothing to ask without a Planner). It
    depends only on what the episode has seen, so the episode may start it as soon as a step
    is observed, while the Critic values the state that step left."""
    p, cfg = ep.p, ep.cfg
    history = p.labels(ep.history[-cfg.prompt_history_length :])
    genre_hints = exploration_genres(
        p.catalogue, ep.last_recommended(), cfg.genre_hint_count, ep.rng
    )
    if not cfg.planner:
        return PlannedStep(Plan(), None, [], None, history, genre_hints)
    genres = planner_genres(
        p.catalogue,
        cfg.genre_order,
        ep.history[-cfg.prompt_history_length :],
        ep.last_recommended(),
        ep.lesson_lift,
    )
    bare = (
        cfg.reply_format == "bare"
        and not cfg.free_text
        and cfg.plan_anchor == "none"
        and not cfg.plan_avoid
    )
    planned = await p.roles.planner(
        PlannerInput(
            history=history,
            reflections=ep.reflections,
            scratchpad=scratchpad_window(ep.steps, cfg.scratchpad_length),
            genres=genres,
            step=len(ep.recommended) + 1,
            rules=p.rules,
            free_text=cfg.free_text,
            anchor=cfg.plan_anchor,
            avoid=cfg.plan_avoid,
            bare=bare,
        ),
        fallback=lambda: Plan(thought=FALLBACK_PLAN, genres=genre_hints),
        seed=ep.call_seed("planner"),
        schema=plan_schema(genres, history, cfg.free_text, cfg.plan_anchor, cfg.plan_avoid),
        validate=lambda plan: check_plan(ep, plan),
        repair=lambda raw: repair_plan(ep, raw),
        choices=plan_choices(genres) if bare else None,
    )
    plan = planned.value.with_anchor_title(history)
    return PlannedStep(plan, plan, planned.turns, planned.trace, history, genre_hints)


async def act_step(ep: EpisodeState) -> Decision:
    """Plan, shortlist and choose this step's item; V(s) first when it is not known yet.

    The plan comes from the request started when the last step was observed, if any; V(s)
    and the plan do not depend on each other, so their requests go out together
    (``agent.concurrent_calls``).
    """
    p, cfg = ep.p, ep.cfg
    recent = ep.recent()
    state = p.state_text(recent)
    calls: list[CallTrace] = []
    loop = LoopTrace(reflections=list(ep.retrieved))
    value: ValueEstimate | None = None
    planning = ep.take_prefetched_plan() or plan_step(ep)
    if cfg.micro and ep.value is None:
        if cfg.concurrent_calls:
            value, step_plan = await asyncio.gather(estimate_value(ep, recent), planning)
        else:
            value = await estimate_value(ep, recent)
            step_plan = await planning
        ep.value = value.value
        ep.value_origin = (value.source, value.similarity)
        if value.call is not None:
            calls.append(value.call)
    else:
        step_plan = await planning
    if ep.value_origin is not None:
        loop.value_source, loop.value_similarity = ep.value_origin
    history, genre_hints, plan = step_plan.history, step_plan.genre_hints, step_plan.plan
    if step_plan.call is not None:
        calls.append(step_plan.call)
    hints_enc: list[int] = []
    hints_dis: list[int] = []
    memory_hits: MemoryHits | None = None
    if cfg.micro and p.memories is not None:
        hints = p.memories.actor.hints(
            state, p.memory_config.actor_top_k, p.memory_config.actor_min_similarity
        )
        hints_enc, hints_dis = hints.encouraged, hints.discouraged
        memory_hits = MemoryHits(encouraged=hints_enc, discouraged=hints_dis)
        shown = hints_enc[: cfg.shortlist_size] + hints_dis[: cfg.shortlist_size]
        loop.hints = [
            HintShown(
                item_id=item,
                sign=1 if hints.weights.get(item, 0.0) > 0 else -1,
                weight=hints.weights.get(item, 0.0),
            )
            for item in shown
        ]
    seen = set(ep.history) | set(ep.recommended)
    limit = (
        (ep.recommended[-1], ep.overlap_limit)
        if ep.overlap_limit is not None and ep.recommended
        else None
    )
    loop.overlap_limit = None if limit is None else limit[1]
    shortlist = p.shortlister.build(
        size=cfg.shortlist_size,
        recent=recent,
        exclude=seen,
        plan_genres=plan.genres,
        hint_genres=genre_hints,
        encouraged=hints_enc,
        discouraged=hints_dis,
        overlap_limit=limit,
    )
    ids = shortlist.item_ids
    if not ids:
        raise RuntimeError(f"episode {ep.key}: no unseen catalogue item is left to recommend")
    allowed = set(ids)

    def check(choice: ActorChoice) -> None:
        if choice.item_id not in allowed:
            raise ValueError(f"item_id {choice.item_id} is not one of the candidates")

    def repair(raw: str) -> ActorChoice | None:
        for match in _INTEGER.findall(raw):
            if int(match) in allowed:
                return ActorChoice(item_id=int(match), reason="repaired: id found in free text")
        grounded = p.item_index.ground(raw, exclude=seen)
        if grounded is None:
            return None
        return ActorChoice(item_id=grounded, reason="grounded: nearest catalogue title")

    prior = step_plan.turns if cfg.actor_follows_planner else []
    bare = cfg.reply_format == "bare" and not cfg.actor_reason
    chosen = await p.roles.actor(
        ActorInput(
            plan=plan.text() or None,
            history=[] if prior else history,
            candidates=[
                CandidateView(
                    item_id=i,
                    title=p.catalogue[i].title,
                    year=p.catalogue[i].year,
                    genres=list(p.catalogue[i].genres),
                )
                for i in ids
            ],
            encouraged=p.labels(hints_enc[: len(ids)]),
            discouraged=p.labels(hints_dis[: len(ids)]),
            genre_hints=genre_hints,
            rules=p.rules,
            reason=cfg.actor_reason,
            bare=bare,
        ),
        fallback=lambda: ActorChoice(item_id=ids[0], reason="fallback: top candidate"),
        seed=ep.call_seed("actor"),
        schema=actor_schema(ids, cfg.actor_reason),
        validate=check,
        repair=repair,
        prior=prior,
        choices=actor_choices(ids) if bare else None,
    )
    calls.append(chosen.trace)
    choice = chosen.value.item_id
    for hint in loop.hints:
        if hint.item_id == choice:
            loop.followed_hint = hint.sign
    ep.pending_thought = plan.text() or None
    trace = BillpStepTrace(
        calls=calls,
        reflections=ep.reflections if cfg.macro else None,
        value=value,
        plan=step_plan.planned,
        memory_hits=memory_hits,
        genre_hints=genre_hints,
        shortlist=ids,
        shortlist_sources={str(k): v for k, v in shortlist.sources.items()},
        choice=chosen.value,
        loop=loop,
    )
    return Decision(item_id=choice, trace=trace)


def scratchpad_window(steps: Sequence[T], length: int) -> list[T]:
    """The last ``length`` steps at most, the window moving in jumps of ``length // 2``.

    A window that slid by one step would change the Planner's prompt right after its
    fixed head at every step; jumping keeps each prompt an extension of the previous one
    (served from the prefix cache) except once per jump, and shows between
    ``length - max(length // 2, 1) + 1`` and ``length`` steps once the episode is longer.
    """
    if length <= 0:
        return []
    jump = max(length // 2, 1)
    start = -(-max(len(steps) - length, 0) // jump) * jump
    return list(steps[start:])


def check_plan(ep: EpisodeState, plan: Plan) -> None:
    if ep.cfg.free_text:
        reject_echo(ep.p.planner_echo, plan.thought, "the plan's thought is not a plan")


def repair_plan(ep: EpisodeState, raw: str) -> Plan | None:
    text = own_text(ep.p.planner_echo, raw) if ep.cfg.free_text else None
    return None if text is None else Plan(thought=text, genres=[])
