"""BiLLP's Critic: V(state) from the critic memory or the Critic LLM, and the one-step TD
update that ``observe`` turns into memory writes (see :mod:`billp.agents.billp_agent` for
the value scale)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from billp.agents.billp_traces import CriticStep, ObserveTrace, ValueEstimate
from billp.agents.loop_trace import LoopUpdate
from billp.agents.messages import CriticInput, CriticValue, critic_schema
from billp.policy import Transition
from billp.policy.writes import ActorWrite, CriticWrite

if TYPE_CHECKING:
    from billp.agents.billp_episode import BiLLPEpisode

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


async def estimate_value(ep: BiLLPEpisode, items: list[int]) -> ValueEstimate:
    """V(state after ``items``): the critic memory first, then the Critic LLM."""
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
    result = await p.roles.critic(
        CriticInput(
            history=p.labels(ep.history[-ep.cfg.prompt_history_length :]),
            session=ep.steps,
            mean_reward=None if mean is None else round(mean, 2),
            remembered_value=remembered,
            rules=rules,
        ),
        fallback=lambda: CriticValue(value=fallback_value(ep, remembered, mean)),
        seed=ep.next_seed(),
        schema=critic_schema(rules),
        validate=lambda value: check_value(ep, value),
        repair=lambda raw: repair_critic(raw, p.clip_value),
    )
    return ValueEstimate(
        source="critic",
        value=round(p.clip_value(result.value.value), 4),
        call=result.trace,
        similarity=None if hit is None else round(hit[0], 6),
    )


def mean_reward(ep: BiLLPEpisode) -> float | None:
    """Mean reward of this session's steps so far (None before the first)."""
    return float(np.mean([s.reward for s in ep.steps])) if ep.steps else None


def fallback_value(ep: BiLLPEpisode, remembered: float | None, mean: float | None) -> float:
    """A value when the Critic's reply is unusable: the remembered value of a similar
    state, else the session's mean reward, else the middle of the rating scale."""
    if remembered is not None:
        return remembered
    if mean is not None:
        return ep.p.clip_value(mean)
    rules = ep.p.rules
    return (rules.rating_min + rules.rating_max) / 2


def check_value(ep: BiLLPEpisode, value: CriticValue) -> None:
    rules = ep.p.rules
    if not rules.value_min <= value.value <= rules.value_max:
        raise ValueError(f"value must be within [{rules.value_min}, {rules.value_max}]")


def repair_critic(raw: str, clip: Callable[[float], float]) -> CriticValue | None:
    """Read a number out of free text, moved into the Critic's scale."""
    match = _NUMBER.search(raw)
    if match is None:
        return None
    return CriticValue(value=clip(float(match.group())))


async def td_update(ep: BiLLPEpisode, previous: list[int], transition: Transition) -> ObserveTrace:
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
