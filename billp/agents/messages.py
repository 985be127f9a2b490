"""Typed messages of the four BiLLP roles.

Each role renders an ``*Input`` model through its Jinja template and expects the LLM to
answer with the matching output model. Output models double as JSON schemas for
structured decoding, so their field bounds are the contract the server enforces.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

VALUE_MIN = -5
"""Lowest state value the Critic may give (BiLLP's scale)."""
VALUE_MAX = 5
"""Highest state value the Critic may give."""
THOUGHT_MAX_CHARS = 200
"""Longest plan text accepted from a model (short plans keep decoding cheap)."""
REFLECTION_MAX_CHARS = 300
"""Longest reflection accepted from a model."""
REASON_MAX_CHARS = 100
"""Longest justification accepted from the Actor."""


class RoleModel(BaseModel):
    """Base of role inputs: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CandidateView(RoleModel):
    """One catalogue item as the Actor sees it."""

    item_id: int
    title: str
    genres: list[str]


class StepView(RoleModel):
    """One finished step of the current episode, for scratchpads and reflections."""

    step: int
    title: str
    genres: list[str]
    reward: float
    thought: str | None = None


# ---------------------------------------------------------------- Planner
class PlannerInput(RoleModel):
    """What the Planner sees before each recommendation."""

    history: list[str] = Field(description="The user's recent titles, oldest first.")
    reflections: list[str] = Field(description="Lessons retrieved from earlier episodes.")
    scratchpad: list[StepView] = Field(description="This episode's recent steps.")
    genres: list[str] = Field(description="Every genre of the catalogue.")
    step: int


class Plan(BaseModel):
    """The Planner's high-level plan for the next recommendation."""

    thought: str = Field(
        max_length=THOUGHT_MAX_CHARS, description="The plan in one or two sentences."
    )
    genres: list[str] = Field(
        default_factory=list, max_length=2, description="Up to two genres to recommend from."
    )


# ---------------------------------------------------------------- Actor
class ActorInput(RoleModel):
    """What the Actor sees when it grounds a plan in an item."""

    plan: str | None = Field(description="The Planner's thought, if the agent plans.")
    history: list[str] = Field(
        description="History titles; empty when the Actor continues the Planner's turn, "
        "which already shows them (sending them twice only costs uncached prefill)."
    )
    candidates: list[CandidateView]
    encouraged: list[str] = Field(description="Titles that worked in similar states.")
    discouraged: list[str] = Field(description="Titles that failed in similar states.")
    genre_hints: list[str] = Field(description="Genres absent from the recent recommendations.")


class ActorChoice(BaseModel):
    """The Actor's pick; ``item_id`` must be one of the shortlisted candidates."""

    item_id: int = Field(description="The id of the chosen candidate.")
    reason: str = Field(default="", max_length=REASON_MAX_CHARS)


def actor_schema(candidate_ids: list[int]) -> dict[str, Any]:
    """JSON schema of :class:`ActorChoice` whose ``item_id`` admits only the shortlist."""
    schema = ActorChoice.model_json_schema()
    schema["properties"]["item_id"]["enum"] = list(candidate_ids)
    return schema


# ---------------------------------------------------------------- Critic
class CriticInput(RoleModel):
    """What the Critic sees: the user's history, this session's recommendations so far,
    and a remembered value of a very similar state, if any.

    The history stays fixed through an episode and the session only grows, so successive
    Critic prompts of one episode share their prefix (vLLM prefix caching).
    """

    history: list[str]
    session: list[str]
    remembered_value: float | None = None


class CriticValue(BaseModel):
    """The Critic's estimate of how well this state keeps the user engaged."""

    value: int = Field(ge=VALUE_MIN, le=VALUE_MAX)


# ---------------------------------------------------------------- Reflector
class ReflectorInput(RoleModel):
    """A finished episode, for the Reflector to learn from."""

    history: list[str]
    steps: list[StepView]
    outcome: str = Field(description="Why the episode ended.")
    length: int
    total_reward: float


class Reflection(BaseModel):
    """A lesson for future plans."""

    reflection: str = Field(max_length=REFLECTION_MAX_CHARS)
