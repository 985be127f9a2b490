"""What BiLLP's learning loop did on one step, as a typed record in ``steps.jsonl``.

Every link of the loop is observable: which reflections the Planner was given, which
actor-memory hints the Actor was shown and whether it took one, whether the Critic's
value came from memory, and the values, TD target and advantage the step wrote back.
:mod:`billp.summary.loop_stats` turns these records into per-phase rates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ValueSource = Literal["memory", "critic", "session", "terminal"]


class RetrievedReflection(BaseModel):
    """A reflection the Planner saw: the episode that wrote it and its similarity."""

    model_config = ConfigDict(extra="forbid")

    episode: str
    similarity: float | None = Field(
        description="Cosine similarity of the situations; None for recency retrieval."
    )


class HintShown(BaseModel):
    """An actor-memory hint shown to the Actor."""

    model_config = ConfigDict(extra="forbid")

    item_id: int
    sign: Literal[-1, 1]
    weight: float = Field(description="Similarity-weighted sum of the item's stored signs.")


class LoopTrace(BaseModel):
    """The learning loop on one step (fields the agent does not use stay empty)."""

    model_config = ConfigDict(extra="forbid")

    reflections: list[RetrievedReflection] = Field(default_factory=list)
    hints: list[HintShown] = Field(default_factory=list)
    followed_hint: Literal[-1, 1] | None = Field(
        None, description="The sign of the hint the chosen item carried, if it was one."
    )
    value_source: ValueSource | None = Field(None, description="Where V(s) came from.")
    value_similarity: float | None = Field(
        None, description="Similarity of the critic-memory state consulted for V(s), if any."
    )
    next_value_source: ValueSource | None = None
    v: float | None = None
    v_next: float | None = None
    reward_booked: float | None = Field(
        None, description="The reward the learner booked (the quit value on a quit)."
    )
    td_target: float | None = None
    advantage: float | None = None
    overlap_limit: float | None = Field(
        None,
        description="The genre overlap with the last recommendation that the shortlist's "
        "candidates had to stay below (agent.lesson_overlap_limit or fixed_overlap_limit).",
    )


class LoopUpdate(BaseModel):
    """What ``observe`` adds to the step's :class:`LoopTrace`: the values it learnt from."""

    model_config = ConfigDict(extra="forbid")

    next_value_source: ValueSource
    v: float
    v_next: float
    reward_booked: float
    td_target: float
    advantage: float
