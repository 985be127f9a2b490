"""BiLLP's Reflector: at an episode's end, a lesson for the episodes of similar users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billp.agents.billp_traces import ReflectionTrace
from billp.agents.echo import own_text, reject_echo
from billp.agents.messages import Reflection, ReflectorInput, reflection_schema
from billp.data import Catalogue
from billp.memory import ReflectionEntry
from billp.policy import EpisodeSummary
from billp.policy.writes import ReflectionWrite

if TYPE_CHECKING:
    from billp.agents.billp_episode import BiLLPEpisode


def describe_outcome(summary: EpisodeSummary, catalogue: Catalogue, info: dict[str, Any]) -> str:
    """A sentence saying why the episode ended, for the Reflector."""
    if summary.truncated and not summary.terminated:
        return f"the session reached the step cap after {len(summary.items)} recommendations"
    if not summary.items:
        return "the session ended before any recommendation"
    last = catalogue[summary.items[-1]].label
    reason = summary.quit_reason
    if reason == "low_reward":
        return f"the user left because they disliked {last} (reward {summary.rewards[-1]:.1f})"
    if reason in {"too_similar", "repeat"}:
        other = info.get("similar_to")
        other_label = catalogue[other].label if isinstance(other, int) else "a recent movie"
        what = "repeated" if reason == "repeat" else "was too similar to"
        return f"the user left because {last} {what} {other_label}"
    return f"the user left after {last}"


async def reflect(ep: BiLLPEpisode, summary: EpisodeSummary) -> ReflectionTrace:
    """Ask the Reflector for the episode's lesson and buffer it as a reflection write."""
    p, cfg = ep.p, ep.cfg
    outcome = describe_outcome(summary, p.catalogue, ep.quit_info)
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
        seed=ep.next_seed(),
        schema=reflection_schema(list(p.catalogue.genres), cfg.free_text),
        validate=lambda reflection: check_reflection(ep, reflection),
        repair=lambda raw: repair_reflection(ep, raw),
    )
    ep.writes.reflections.append(
        ReflectionWrite(
            situation=p.state_text(ep.history[-cfg.state_window :]),
            entry=ReflectionEntry(
                text=result.value.lesson(),
                user_id=ep.user_id,
                episode=ep.key,
                length=len(accepted),
                total_reward=total_reward,
            ),
        )
    )
    return ReflectionTrace(outcome=outcome, reflection=result.value.lesson(), calls=[result.trace])


def check_reflection(ep: BiLLPEpisode, reflection: Reflection) -> None:
    if not ep.cfg.free_text:
        if not (reflection.prefer or reflection.avoid):
            raise ValueError("name at least one genre to prefer or to avoid")
        return
    reject_echo(ep.p.reflector_echo, reflection.reflection, "the reflection is not a lesson")


def repair_reflection(ep: BiLLPEpisode, raw: str) -> Reflection | None:
    text = own_text(ep.p.reflector_echo, raw) if ep.cfg.free_text else None
    return None if text is None else Reflection(reflection=text)
