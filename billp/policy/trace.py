"""The typed traces an episode agent returns, and how a step's traces fold into one.

``act`` returns a :class:`Decision` (the item and an act trace), ``observe`` an observe
trace and ``end_episode`` an :class:`EpisodeEnd` (memory writes and an episode trace). Each
trace is a :class:`TraceRecord` subclass of the agent's own; the act trace's
:meth:`TraceRecord.with_observed` folds the observe trace in, and the result is the step's
``trace`` in ``steps.jsonl``.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from billp.policy.writes import MemoryWrites


class TraceRecord(BaseModel):
    """A typed trace. Its record is its fields in declaration order; a field left None is
    not recorded (an agent that does not plan has no ``plan``, not ``"plan": null``). Only
    the trace's own fields are dropped: None inside a field (a plain model, a dict) stays.
    Unknown fields are rejected, so a recorded line reads back as the trace that wrote it."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}

    def with_observed(self, observed: TraceRecord) -> TraceRecord:
        """The step's trace: this act trace with what ``observe`` returned folded in. This
        one takes only an empty trace (a policy that learns nothing in ``observe``); an
        agent whose ``observe`` records something overrides it."""
        if observed.model_dump():
            raise TypeError(f"{type(self).__name__} cannot fold in {type(observed).__name__}")
        return self


class Decision(BaseModel):
    """What ``act`` returns: the item to recommend and how the agent chose it."""

    item_id: int
    trace: SerializeAsAny[TraceRecord]


class EpisodeEnd(BaseModel):
    """What ``end_episode`` returns: the episode's buffered memory writes (committed, or
    not, by the caller) and what the episode-level calls did (reflection; None: none)."""

    writes: MemoryWrites = Field(default_factory=MemoryWrites)
    trace: SerializeAsAny[TraceRecord] | None = None
