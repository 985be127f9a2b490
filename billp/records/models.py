"""The lines of a run directory's JSONL files, as Pydantic models.

Field order is the order of the keys on disk: ``line()`` gives the JSON object exactly as
billp writes it (``json.dumps`` of it is the line, byte for byte).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from billp.agents.billp_traces import BillpStepTrace, ReflectionTrace
from billp.agents.roles import CallTrace
from billp.policy import MemoryWrites
from billp.policy.memoryless import RankedTrace

Phase = Literal["train", "test"]


class EpisodeRecord(BaseModel):
    """One finished episode, a line of ``episodes.jsonl``.

    ``length`` (Len) counts accepted recommendations: the step on which the user quit is
    not one. ``total_reward`` (R_traj) sums the rewards of accepted steps. ``rewards``
    and ``items`` list every step, the quitting one included.
    """

    key: str
    phase: Phase
    index: int
    user_id: int
    seed: int
    items: list[int]
    rewards: list[float]
    steps: int
    length: int
    total_reward: float
    terminated: bool
    truncated: bool
    quit_reason: str | None
    fallbacks: int
    memory_writes: MemoryWrites = Field(default_factory=MemoryWrites)

    @property
    def capped(self) -> bool:
        """Ended by the step cap (not by the user quitting)."""
        return self.truncated and not self.terminated

    def line(self) -> dict[str, Any]:
        """The JSON object of the line."""
        return self.model_dump(mode="json")


StepTrace = BillpStepTrace | RankedTrace
"""What a policy recorded of one step: a BiLLP agent's step (LLM calls, plan, shortlist,
choice, learning loop) or a memoryless policy's (its scored choice and shortlist). Their key
orders and choices differ, so each has its own model; a line's JSON reads back as the one
that wrote it (each rejects the other's fields)."""


class StepRecord(BaseModel):
    """One env step of an episode, a line of ``steps.jsonl``.

    ``reward`` and ``env_step_s`` are rounded to 6 decimals by the runner.
    """

    episode: str
    phase: Phase
    user_id: int
    step: int
    """1 for the first step."""
    action: int
    reward: float
    terminated: bool
    truncated: bool
    quit_reason: str | None
    similar_to: int | None
    env_step_s: float
    trace: StepTrace

    @property
    def calls(self) -> list[CallTrace]:
        """The step's LLM calls (none for a memoryless policy)."""
        return self.trace.calls if isinstance(self.trace, BillpStepTrace) else []

    def line(self) -> dict[str, Any]:
        """The JSON object of the line."""
        return self.model_dump()


class EpisodeTraceRecord(BaseModel):
    """What an episode's episode-level calls did (reflection), the line of ``steps.jsonl``
    after its steps (``step`` is null)."""

    episode: str
    phase: Phase
    step: None = None
    trace: ReflectionTrace

    @property
    def calls(self) -> list[CallTrace]:
        """The episode-level LLM calls (the Reflector's)."""
        return self.trace.calls

    def line(self) -> dict[str, Any]:
        """The JSON object of the line."""
        return self.model_dump()


StepsLine = StepRecord | EpisodeTraceRecord
"""A line of ``steps.jsonl``."""
