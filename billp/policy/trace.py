"""The typed traces an episode agent returns, and how a step's trace is recorded.

``act`` returns a :class:`Decision` (the item and an act trace), ``observe`` an observe
trace and ``end_episode`` an :class:`EpisodeEnd` (memory writes and an episode trace). Each
trace is a :class:`TraceRecord` subclass of the agent's own; the episode loop turns them into
the JSON objects of ``steps.jsonl`` with :meth:`TraceRecord.record` and :func:`step_record`.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from billp.policy.writes import MemoryWrites


class TraceRecord(BaseModel):
    """A typed trace. Its record is its fields in declaration order; a field left None is
    not recorded (an agent that does not plan has no ``plan``, not ``"plan": null``). Only
    the trace's own fields are dropped: None inside a field (a plain model, a dict) stays."""

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}

    def record(self) -> dict[str, Any]:
        """The JSON object this trace is recorded as."""
        return self.model_dump()


class Decision(BaseModel):
    """What ``act`` returns: the item to recommend and how the agent chose it."""

    item_id: int
    trace: SerializeAsAny[TraceRecord] = Field(default_factory=TraceRecord)


class EpisodeEnd(BaseModel):
    """What ``end_episode`` returns: the episode's buffered memory writes (committed, or
    not, by the caller) and what the episode-level calls did (reflection)."""

    writes: MemoryWrites = Field(default_factory=MemoryWrites)
    trace: SerializeAsAny[TraceRecord] = Field(default_factory=TraceRecord)


CALLS = "calls"
"""The field of a trace that lists its LLM calls (each call's trace as a JSON object)."""


def step_record(acted: TraceRecord, observed: TraceRecord) -> dict[str, Any]:
    """A step's trace as ``steps.jsonl`` records it: ``acted``'s record, then ``observed``'s
    folded in. Observe's LLM calls (``calls``) follow act's; a field both return as an
    object is one object (act's keys in place, observe's values for the keys it sets); any
    other observe field follows act's fields."""
    step = acted.record()
    for key, value in observed.record().items():
        before = step.get(key)
        if key == CALLS and isinstance(before, list):
            step[key] = [*before, *value]
        elif isinstance(before, dict) and isinstance(value, dict):
            step[key] = {**before, **value}
        else:
            step[key] = value
    return step
