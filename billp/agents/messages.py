"""Typed messages of the four BiLLP roles.

Each role renders an ``*Input`` model through its Jinja template and expects the LLM to
answer with the matching output model. Output models double as JSON schemas for
structured decoding, so their field bounds are the contract the server enforces.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

AnchorMode = Literal["none", "number", "title"]
"""How the Planner names its anchor movie (``agent.plan_anchor``)."""
Knowledge = Literal["informed", "uninformed"]
"""What the prompts tell the agent about why users leave (``agent.knowledge``)."""
CriticScale = Literal["digit", "number"]
"""How the Critic writes its value (``agent.critic_scale``)."""

THOUGHT_MAX_CHARS = 200
"""Longest plan text accepted from a model (short plans keep decoding cheap)."""
REFLECTION_MAX_CHARS = 300
"""Longest reflection accepted from a model."""
REASON_MAX_CHARS = 100
"""Longest justification accepted from the Actor."""


def _unique(values: list[str]) -> list[str]:
    """``values`` without repeats, first occurrence kept (xgrammar has no uniqueItems)."""
    return list(dict.fromkeys(values))


class UserRules(BaseModel):
    """What the agent is told about the simulated user, taken from the run's config.

    Templates read the quit rule and the value scale from here rather than hard-coding
    them, so a config change reaches every prompt. ``value_min``/``value_max`` bound the
    Critic's values: a value is a discounted *average* of future rewards (see
    :mod:`billp.agents.billp_agent`), so it lives on the rating scale, extended down to
    the reward booked for a quit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    knowledge: Knowledge = Field(
        "informed",
        description="'informed': prompts state the quit rule below; 'uninformed': they only "
        "say that an unsatisfied user may leave (``agent.knowledge``).",
    )
    quit_threshold: float = Field(2.0, description="Users quit after a reward below this.")
    quit_window: int = Field(
        2, ge=0, description="Recent recommendations a new one must differ from."
    )
    similarity_threshold: float = Field(
        0.75, ge=0, le=1, description="Genre Jaccard at or above which a movie is too similar."
    )
    rating_min: float = 1.0
    rating_max: float = 5.0
    typical_rating: float = Field(
        3.5, description="Mean rating of the train users' logged interactions."
    )
    value_min: float = Field(0.0, description="Lowest value the Critic may give (a lost user).")
    value_max: float = Field(5.0, description="Highest value the Critic may give.")

    @property
    def too_similar(self) -> str:
        """How the templates name a too-similar movie (from ``similarity_threshold``)."""
        if self.similarity_threshold >= 1.0:
            return "the same set of genres"
        return f"nearly the same genres (at least {self.similarity_threshold:.0%} of them shared)"


class RoleModel(BaseModel):
    """Base of role inputs: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CandidateView(RoleModel):
    """One catalogue item as the Actor sees it: its title without the year (the year is a
    separate field, so a template shows it only if it asks: fewer tokens per line)."""

    item_id: int
    title: str
    year: int | None = None
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
    rules: UserRules = Field(default_factory=UserRules)
    free_text: bool = Field(False, description="Whether a free-text thought is asked for.")
    anchor: AnchorMode = Field("none", description="Whether and how the plan's anchor is named.")
    avoid: bool = Field(False, description="Whether genres to avoid are asked for.")
    bare: bool = Field(False, description="Whether the genres are asked for bare, not in JSON.")


class Plan(BaseModel):
    """The Planner's high-level plan for the next recommendation.

    The structured fields come first, so that under structured decoding the model commits
    to them before any free text: ``anchor`` (a movie of the user's history the plan
    builds on), ``genres`` to recommend from and ``avoid`` genres. ``thought`` is free
    text, asked for only when ``agent.free_text`` is on (see :func:`plan_schema`).
    """

    anchor: str | int = Field(
        "",
        description="A movie from the user's history the plan builds on: its title, or its "
        "number in the numbered history (see :meth:`with_anchor_title`).",
    )
    genres: list[str] = Field(
        default_factory=list, max_length=2, description="Up to two genres to recommend from."
    )
    avoid: list[str] = Field(default_factory=list, max_length=2, description="Genres to avoid.")
    thought: str = Field(
        "", max_length=THOUGHT_MAX_CHARS, description="One sentence: why, for this user."
    )

    _unique_genres = field_validator("genres", "avoid")(_unique)

    def with_anchor_title(self, history: list[str]) -> Plan:
        """This plan with a numbered anchor replaced by its title in ``history`` (1-based)."""
        if isinstance(self.anchor, int):
            title = history[self.anchor - 1] if 1 <= self.anchor <= len(history) else ""
            return self.model_copy(update={"anchor": title})
        return self

    def text(self) -> str:
        """The plan as the Actor, the scratchpad and the Reflector read it."""
        parts = []
        if self.genres:
            parts.append(f"Recommend {' or '.join(self.genres)}")
            if self.anchor:
                parts[-1] += f" for the fan of {self.anchor}"
            parts[-1] += "."
        elif self.anchor:
            parts.append(f"Build on {self.anchor}.")
        if self.avoid:
            parts.append(f"Avoid {', '.join(self.avoid)}.")
        if self.thought.strip():
            parts.append(self.thought.strip())
        return " ".join(parts)


def plan_schema(
    genres: list[str],
    anchors: list[str],
    free_text: bool,
    anchor: AnchorMode = "none",
    avoid: bool = False,
) -> dict[str, Any]:
    """The Plan schema: genre lists restricted to the catalogue's genres, ``anchor`` to the
    titles shown (or their numbers, 1-based), ``avoid`` only when asked for, and ``thought``
    only with free text on."""
    schema = genre_enum_schema(Plan, ["genres", "avoid"], genres)
    props = schema["properties"]
    if not avoid:
        props.pop("avoid")
    props["genres"]["minItems"] = 1
    if anchors and anchor == "title":
        props["anchor"] = {"type": "string", "enum": list(dict.fromkeys(anchors))}
    elif anchors and anchor == "number":
        props["anchor"] = {"type": "integer", "enum": list(range(1, len(anchors) + 1))}
    else:
        props.pop("anchor")
    if not free_text:
        props.pop("thought")
    schema["required"] = list(props)
    return schema


def plan_choices(genres: list[str]) -> dict[str, Plan]:
    """The bare answers a genres-only Planner may give: one genre, or two separated by a
    comma (in either order), each mapped to its plan."""
    choices = {genre: Plan(genres=[genre]) for genre in genres}
    for first in genres:
        for second in genres:
            if first != second:
                choices[f"{first}, {second}"] = Plan(genres=[first, second])
    return choices


# ---------------------------------------------------------------- Actor
class ActorInput(RoleModel):
    """What the Actor sees when it grounds a plan in an item."""

    plan: str | None = Field(description="The Planner's thought, if the agent plans.")
    history: list[str] = Field(
        description="History titles; empty when the Actor continues the Planner's turn "
        "(agent.actor_follows_planner), "
        "which already shows them (sending them twice only costs uncached prefill)."
    )
    candidates: list[CandidateView]
    encouraged: list[str] = Field(description="Titles that worked in similar states.")
    discouraged: list[str] = Field(description="Titles that failed in similar states.")
    genre_hints: list[str] = Field(description="Genres absent from the recent recommendations.")
    rules: UserRules = Field(default_factory=UserRules)
    reason: bool = Field(False, description="Whether a short reason is asked for.")
    bare: bool = Field(False, description="Whether the id is asked for bare, not in JSON.")


class ActorChoice(BaseModel):
    """The Actor's pick; ``item_id`` must be one of the shortlisted candidates."""

    item_id: int = Field(description="The id of the chosen candidate.")
    reason: str = Field(default="", max_length=REASON_MAX_CHARS)


def actor_schema(candidate_ids: list[int], reason: bool = False) -> dict[str, Any]:
    """JSON schema of :class:`ActorChoice` whose ``item_id`` admits only the shortlist, with
    ``reason`` only when asked for."""
    schema = ActorChoice.model_json_schema()
    schema["properties"]["item_id"]["enum"] = list(candidate_ids)
    if not reason:
        schema["properties"].pop("reason")
        schema["required"] = ["item_id"]
    return schema


def actor_choices(candidate_ids: list[int]) -> dict[str, ActorChoice]:
    """The bare answers the Actor may give: a shortlisted candidate's id."""
    return {str(item): ActorChoice(item_id=item) for item in candidate_ids}


# ---------------------------------------------------------------- Critic
class CriticInput(RoleModel):
    """What the Critic sees: the user's history, this session's recommendations so far,
    and a remembered value of a very similar state, if any.

    The history stays fixed through an episode and the session only grows, so successive
    Critic prompts of one episode share their prefix (vLLM prefix caching).
    """

    history: list[str]
    session: list[StepView] = Field(description="This session's steps with their rewards.")
    mean_reward: float | None = Field(None, description="Mean reward of the session so far.")
    remembered_value: float | None = None
    rules: UserRules = Field(default_factory=UserRules)
    scale: CriticScale = Field("digit", description="Whole numbers only, or any number.")
    bare: bool = Field(False, description="Whether the digit is asked for bare, not in JSON.")


class CriticValue(BaseModel):
    """The Critic's estimate of the discounted average reward still to come (0: the user
    is lost). The bounds come from :class:`UserRules` through :func:`critic_schema`."""

    value: float = Field(allow_inf_nan=False)


def critic_schema(rules: UserRules, scale: CriticScale = "digit") -> dict[str, Any]:
    """JSON schema of :class:`CriticValue` bounded to the run's value scale: any number in
    it, or (``digit``) one of its whole numbers."""
    schema = CriticValue.model_json_schema()
    if scale == "digit":
        schema["properties"]["value"].update({"type": "integer", "enum": digit_scale(rules)})
    else:
        schema["properties"]["value"].update(
            {"type": "number", "minimum": rules.value_min, "maximum": rules.value_max}
        )
    return schema


def critic_choices(rules: UserRules) -> dict[str, CriticValue]:
    """The bare answers a digit-scale Critic may give: a whole value of the scale."""
    return {str(digit): CriticValue(value=digit) for digit in digit_scale(rules)}


def digit_scale(rules: UserRules) -> list[int]:
    """The whole values of the Critic's scale, lowest first."""
    return list(range(math.ceil(rules.value_min), math.floor(rules.value_max) + 1))


# ---------------------------------------------------------------- Reflector
class ReflectorInput(RoleModel):
    """A finished episode, for the Reflector to learn from."""

    history: list[str]
    steps: list[StepView]
    outcome: str = Field(description="Why the episode ended.")
    length: int
    total_reward: float
    genres: list[str] = Field(default_factory=list, description="Every genre of the catalogue.")
    rules: UserRules = Field(default_factory=UserRules)
    free_text: bool = Field(False, description="Whether a free-text lesson is asked for.")


class Reflection(BaseModel):
    """A lesson for future plans: genres to favour and to avoid, and one sentence.

    The genre fields are enumerated under structured decoding (see
    :func:`reflection_schema`), so even a small model's lesson carries a usable signal.
    """

    prefer: list[str] = Field(default_factory=list, max_length=2)
    avoid: list[str] = Field(default_factory=list, max_length=2)
    reflection: str = Field("", max_length=REFLECTION_MAX_CHARS)

    _unique_genres = field_validator("prefer", "avoid")(_unique)

    def lesson(self) -> str:
        """The text stored in reflection memory and shown to later Planners."""
        parts = []
        if self.prefer:
            parts.append(f"Prefer {', '.join(self.prefer)}.")
        if self.avoid:
            parts.append(f"Avoid {', '.join(self.avoid)}.")
        parts.append(self.reflection.strip())
        return " ".join(p for p in parts if p)


def reflection_schema(genres: list[str], free_text: bool) -> dict[str, Any]:
    """The Reflection schema: genre lists from the catalogue; free text only when asked."""
    schema = genre_enum_schema(Reflection, ["prefer", "avoid"], genres)
    schema["properties"]["prefer"]["minItems"] = 1
    if not free_text:
        schema["properties"].pop("reflection")
    schema["required"] = list(schema["properties"])
    return schema


def genre_enum_schema(
    model: type[BaseModel], fields: list[str], genres: list[str]
) -> dict[str, Any]:
    """``model``'s schema with the list ``fields`` restricted to the catalogue's genres."""
    schema = model.model_json_schema()
    for field in fields:
        schema["properties"][field]["items"] = {"type": "string", "enum": list(genres)}
    return schema
