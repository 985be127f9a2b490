"""BiLLP's Critic: V(state) from the critic memory or the Critic LLM, and the one-step TD
update that ``observe`` turns into memory writes (see :mod:`billp.agents.billp_agent` for
the value scale)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from billp.agents.billp_state import EpisodeState, TDRecord
from billp.agents.billp_traces import CriticStep, ObserveTrace, ValueEstimate
from billp.agents.loop_trace import LoopUpdate
from billp.agents.messages import (
    CriticInput,
    CriticValue,
    critic_choices,
    critic_schema,
    digit_scale,
)
from billp.llm.messages import TokenLogprobs
from billp.policy import Transition
from billp.policy.writes import ActorWrite, CriticWrite

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DIGIT_TOP_LOGPROBS = 20
"""Alternatives asked for at each token of a digit-scale Critic's reply: the most vLLM
returns by default, so that every digit of the scale is among them unless its probability
is negligible."""


async def estimate_value(ep: EpisodeState, items: list[int]) -> ValueEstimate:
    """V(state after ``items``): the critic memory first, then the Critic LLM (or, with
    ``agent.value_source = "session"``, the session's mean reward so far: no LLM call)."""
    p = ep.p
    state = p.state_text(items)
    hit = None
    if p.memories is not None:
        hit = p.memories.critic.lookup(state, p.memory_config.critic_hint_similarity)
    if hit is not None and hit[0] >= p.memory_config.critic_reuse_similarity:
        return ValueEstimate(
            source="memory", similarity=round(hit[0], 6), value=p.clip_value(hit[1])
        )
    remembered = p.clip_value(hit[1]) if hit is not None else None
    rules = p.rules
    mean = mean_reward(ep)
    if ep.cfg.value_source == "session":
        return ValueEstimate(
            source="session",
            value=session_value(ep, [s.reward for s in ep.steps]),
            similarity=None if hit is None else round(hit[0], 6),
        )
    scale = ep.cfg.critic_scale
    bare = ep.cfg.reply_format == "bare" and scale == "digit"
    result = await p.roles.critic(
        CriticInput(
            history=p.labels(ep.history[-ep.cfg.prompt_history_length :]),
            session=ep.steps,
            mean_reward=None if mean is None else round(mean, 2),
            remembered_value=remembered,
            rules=rules,
            scale=scale,
            bare=bare,
        ),
        fallback=lambda: CriticValue(value=fallback_value(ep, remembered, mean)),
        seed=ep.call_seed("critic"),
        schema=critic_schema(rules, scale),
        validate=lambda value: check_value(ep, value),
        repair=lambda raw: repair_critic(raw, p.clip_value),
        top_logprobs=DIGIT_TOP_LOGPROBS if scale == "digit" else None,
        choices=critic_choices(rules) if bare else None,
    )
    value = result.value.value
    distribution = None
    if scale == "digit" and result.logprobs:
        read = digit_distribution(result.logprobs, digit_scale(rules))
        if read is not None:
            distribution = [round(q, 4) for q in read]
            value = sum(q * d for q, d in zip(read, digit_scale(rules), strict=True))
    return ValueEstimate(
        source="critic",
        value=round(p.clip_value(value), 4),
        call=result.trace,
        similarity=None if hit is None else round(hit[0], 6),
        distribution=distribution,
    )


def digit_distribution(logprobs: list[TokenLogprobs], digits: list[int]) -> list[float] | None:
    """The probability of each of ``digits`` at the first generated digit, renormalised over
    them, from the top log-probabilities there; None when no generated token is a digit or
    none of ``digits`` is among the alternatives (a negative scale is not one token each)."""
    for position in logprobs:
        if not position.token.strip().isdigit():
            continue
        mass = dict.fromkeys(digits, 0.0)
        for token, logprob in position.top.items():
            text = token.strip()
            if text.isdigit() and int(text) in mass:
                mass[int(text)] += math.exp(logprob)
        total = sum(mass.values())
        return [mass[d] / total for d in digits] if total > 0 else None
    return None


def session_value(ep: EpisodeState, rewards: list[float]) -> float:
    """V(s) from the session's data (``agent.value_source = "session"``): the mean of
    ``rewards`` so far, the train users' typical rating before the first step."""
    mean = float(np.mean(rewards)) if rewards else ep.p.rules.typical_rating
    return round(ep.p.clip_value(mean), 4)


def mean_reward(ep: EpisodeState) -> float | None:
    """Mean reward of this session's steps so far (None before the first)."""
    return float(np.mean([s.reward for s in ep.steps])) if ep.steps else None


def fallback_value(ep: EpisodeState, remembered: float | None, mean: float | None) -> float:
    """A value when the Critic's reply is unusable: the remembered value of a similar
    state, else the session's mean reward, else the middle of the rating scale."""
    if remembered is not None:
        return remembered
    if mean is not None:
        return ep.p.clip_value(mean)
    rules = ep.p.rules
    return (rules.rating_min + rules.rating_max) / 2


def check_value(ep: EpisodeState, value: CriticValue) -> None:
    rules = ep.p.rules
    if not rules.value_min <= value.value <= rules.value_max:
        raise ValueError(f"value must be within [{rules.value_min}, {rules.value_max}]")


def repair_critic(raw: str, clip: Callable[[float], float]) -> CriticValue | None:
    """Read a number out of free text, moved into the Critic's scale."""
    match = _NUMBER.search(raw)
    if match is None:
        return None
    return CriticValue(value=clip(float(match.group())))


async def td_update(ep: EpisodeState, previous: list[int], transition: Transition) -> ObserveTrace:
    """Learn from the step that left ``previous``: V(s'), the TD target and the advantage,
    buffered as the actor-memory sign and the critic-memory value of ``previous``'s state.
    V(s') becomes the episode's V(s) for the next step."""
    assert ep.value is not None, "act() must run before observe()"
    cfg = ep.cfg
    if transition.terminated:
        reward = cfg.quit_value
        next_value = ValueEstimate(source="terminal", value=0.0)
    else:
        reward = float(transition.reward)
        next_value = await estimate_value(ep, ep.recent())
    target = (1.0 - cfg.gamma) * reward + cfg.gamma * next_value.value
    advantage = target - ep.value
    state = ep.p.state_text(previous)
    ep.writes.actor.append(
        ActorWrite(state=state, item_id=transition.action, sign=1 if advantage >= 0 else -1)
    )
    ep.writes.critic.append(CriticWrite(state=state, value=round(target, 6)))
    ep.td_log.append(
        TDRecord(
            state=state,
            item=transition.action,
            reward=reward,
            v=ep.value,
            v_source=ep.value_origin[0] if ep.value_origin else "critic",
            v_next=next_value.value,
            v_next_source=next_value.source,
            terminal=transition.terminated,
        )
    )
    trace = ObserveTrace(
        calls=None if next_value.call is None else [next_value.call],
        loop=LoopUpdate(
            next_value_source=next_value.source,
            v=round(ep.value, 6),
            v_next=round(next_value.value, 6),
            reward_booked=round(reward, 6),
            td_target=round(target, 6),
            advantage=round(advantage, 6),
        ),
        critic=CriticStep(
            v=ep.value,
            v_next=next_value.value,
            next=next_value,
            td_target=round(target, 6),
            advantage=round(advantage, 6),
        ),
    )
    ep.value = next_value.value
    ep.value_origin = (next_value.source, next_value.similarity)
    return trace
