"""The typed traces a BiLLP episode returns from ``act``, ``observe`` and ``end_episode``.

``act`` returns a :class:`BillpStepTrace`, ``observe`` an :class:`ObserveTrace` that folds
into it; the folded step and the :class:`ReflectionTrace` are the ``trace`` objects of
``steps.jsonl`` (key order included: the golden files compare them byte for byte). The
learning loop's own fields are in :mod:`billp.agents.loop_trace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, model_serializer

from billp.agents.loop_trace import LoopTrace, LoopUpdate, ValueSource
from billp.agents.messages import ActorChoice, Plan
from billp.agents.roles import CallTrace
from billp.llm import ChatMessage
from billp.policy import TraceRecord


@dataclass(frozen=True)
class PlannedStep:
    """The Planner's part of a step: the plan (its anchor a title), the Planner's turns for an
    Actor that continues them, the call's trace, and the shown history and genre hints."""

    plan: Plan
    planned: Plan | None
    """The Planner's plan as traced; None when the agent does not plan."""
    turns: list[ChatMessage]
    call: CallTrace | None
    history: list[str]
    genre_hints: list[str]


class ValueEstimate(BaseModel):
    """V(state) and where it came from: the critic memory, the Critic LLM (its call), or the
    terminal state (0)."""

    source: ValueSource
    value: float
    similarity: float | None = None
    """Similarity of the critic-memory state consulted, if any."""
    call: CallTrace | None = None
    distribution: list[float] | None = None
    """With a digit-scale Critic: the probability of each whole value of the scale, lowest
    first, read from the reply's token log-probabilities; ``value`` is their mean."""

    @model_serializer
    def _record(self) -> dict[str, Any]:
        # The recorded key order: a memory value names its similarity before the value.
        record: dict[str, Any] = {"source": self.source}
        if self.source == "memory":
            record["similarity"] = self.similarity
        record["value"] = self.value
        if self.call is not None:
            record["call"] = self.call.model_dump()
        if self.source != "memory" and self.similarity is not None:
            record["similarity"] = self.similarity
        if self.distribution is not None:
            record["distribution"] = self.distribution
        return record


class MemoryHits(BaseModel):
    """The actor-memory hints for the state: items to encourage and to discourage."""

    encouraged: list[int]
    discouraged: list[int]


class CriticStep(BaseModel):
    """The one-step TD update: V(s), V(s'), the TD target and the advantage."""

    v: float
    v_next: float
    next: ValueEstimate
    td_target: float
    advantage: float


class ObserveTrace(TraceRecord):
    """What ``observe`` did (micro-learning only): the Critic call for V(s'), if one was
    made, and the update the step's memory writes come from."""

    calls: list[CallTrace] | None = None
    loop: LoopUpdate | None = None
    critic: CriticStep | None = None


class BillpStepTrace(TraceRecord):
    """One BiLLP step: ``act``'s LLM calls, the reflections and value it used, the plan, the
    shortlist it built and the Actor's choice, and the learning loop; then what ``observe``
    added (its Critic call, the loop's values, the TD update)."""

    calls: list[CallTrace] = Field(default_factory=list)
    reflections: list[str] | None = None
    """Given to the Planner (macro-learning only)."""
    value: ValueEstimate | None = None
    """V(s), when this step had to estimate it (the first; later steps reuse V(s'))."""
    plan: Plan | None = None
    memory_hits: MemoryHits | None = None
    genre_hints: list[str]
    shortlist: list[int]
    shortlist_sources: dict[str, str]
    choice: ActorChoice
    loop: LoopTrace
    critic: CriticStep | None = None
    """The TD update (micro-learning), from ``observe``."""

    def with_observed(self, observed: TraceRecord) -> BillpStepTrace:
        """This step with ``observe``'s trace folded in: its calls after act's, its values
        in ``loop``, its TD update as ``critic``."""
        if not isinstance(observed, ObserveTrace):
            raise TypeError(f"a BiLLP step takes an ObserveTrace, not {type(observed).__name__}")
        loop = self.loop
        if observed.loop is not None:
            loop = loop.model_copy(update=observed.loop.model_dump())
        return self.model_copy(
            update={
                "calls": [*self.calls, *(observed.calls or [])],
                "loop": loop,
                "critic": observed.critic,
            }
        )


class ReflectionTrace(TraceRecord):
    """What ``end_episode`` did (macro-learning only): the outcome told to the Reflector and
    the lesson it wrote."""

    outcome: str
    reflection: str
    calls: list[CallTrace]
