"""The ``agent`` section: which policy acts, and BiLLP's learning switches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from billp.config.section import Section
from billp.policy_registry import POLICY_NAMES, Retrieval, names, policy_spec

if TYPE_CHECKING:
    AgentName = str
else:
    AgentName = Literal[POLICY_NAMES]
"""Policies that ``--agent.name`` accepts (``--help`` lists them): the names registered in
:mod:`billp.policy_registry`. A Literal so that a bad name fails validation, naming them."""

LLM_AGENTS: frozenset[str] = frozenset(names("llm"))
GenreOrder = Literal["catalogue", "history", "fresh", "lessons"]
"""Orders of the Planner's genre list (:mod:`billp.agents.genre_order`)."""


class AgentConfig(Section):
    """Which policy acts, and BiLLP's learning switches."""

    name: AgentName = Field("billp", description="Policy: an LLM agent or a baseline.")
    planner: bool | None = Field(
        None, description="Ask the Planner for a plan each step (default from agent.name)."
    )
    macro: bool | None = Field(
        None, description="Macro-learning: reflections (default from agent.name)."
    )
    micro: bool | None = Field(
        None, description="Micro-learning: Critic and actor memory (default from agent.name)."
    )
    reflection_retrieval: Retrieval | None = Field(
        None,
        description="'nearest' (BiLLP: FAISS top-K), 'recent' (Reflexion) or 'useful' (of the "
        "3K nearest, the K whose episodes earned the most reward); default from name.",
    )
    knowledge: Literal["informed", "uninformed"] = Field(
        "informed",
        description="What the prompts tell the agent about the user: 'informed' states the quit "
        "rule with its threshold and window and says to change genres from step to step; "
        "'uninformed' (BiLLP's framing) only says that an unsatisfied user may leave, so the "
        "agent has to learn why users leave from its reflections. Exploration genre hints are "
        "offered in both (BiLLP's category tool).",
    )
    gamma: float = Field(0.5, ge=0, le=1, description="Discount in A = r + gamma*V(s') - V(s).")
    quit_value: float = Field(
        0.0,
        description="Reward the learner books for the step on which the user quit (the user "
        "is lost: nothing more to come). Values are discounted averages of rewards, on the "
        "rating scale extended down to this value.",
    )
    shortlist_size: int = Field(
        10,
        ge=2,
        description="Catalogue candidates shown to the Actor. Each line costs ~16 uncached "
        "prompt tokens per step (the list is new at every step); BiLLP showed 20.",
    )
    genre_hint_count: int = Field(
        2, ge=0, description="Genres absent from the recent window suggested for exploration."
    )
    hint_window: int = Field(
        4, ge=0, description="Recent recommendations whose genres the exploration hint avoids."
    )
    state_window: int = Field(
        10, ge=1, description="Recent items that describe a state for the Critic and memories."
    )
    prompt_history_length: int = Field(
        15, ge=1, description="History titles shown in prompts (BiLLP: 15)."
    )
    genre_order: GenreOrder = Field(
        "catalogue",
        description="Order of the genre list the Planner chooses from: the catalogue's "
        "(alphabetical for MovieLens); 'history' (the genres of the user's shown history, "
        "most frequent first, then the rest); 'fresh' (as 'history', but genres of the last "
        "agent.hint_window recommendations go last); or 'lessons' (as 'fresh', and within "
        "each part the genres the retrieved lessons' users rated above their session mean "
        "first, those rated below it last; as 'fresh' for agents that keep no lessons). A 135M "
        "Planner picks the first genres it is shown more often than any other.",
    )
    lesson_facts: bool = Field(
        True,
        description="Add what the episode measured to each lesson: the genres rated highest "
        "and lowest, and the last movies before the user left (a 135M Reflector's own genre "
        "picks follow the order of the genre list more than the session).",
    )
    lesson_overlap_limit: bool = Field(
        False,
        description="Keep out of the shortlist the candidates whose genres overlap the last "
        "recommendation's (Jaccard) as much as, or more than, the least overlap after which "
        "a retrieved lesson's user left (lessons record it; overlaps of 0 do not count; no "
        "lesson retrieved, or an agent that keeps none: no limit).",
    )
    fixed_overlap_limit: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Control for agent.lesson_overlap_limit: the same shortlist limit at this "
        "fixed genre overlap, at every step, learnt from nothing (a plain diversity filter).",
    )
    free_text: bool = Field(
        False,
        description="Ask the Planner and Reflector for a free-text sentence besides their "
        "structured fields (genres to recommend and avoid, an anchor title). Off by default: "
        "SmolLM2-135M fills free text with copied titles or prompt text; turn it on for "
        "7B-class models. Free text that echoes its template is re-asked, then replaced.",
    )
    scratchpad_length: int = Field(
        8,
        ge=0,
        description="Most recent steps of the episode kept in the Planner's scratchpad, at "
        "most. The window moves in jumps of half its length, so between jumps each Planner "
        "prompt extends the last one and the server's prefix cache keeps it.",
    )
    plan_avoid: bool = Field(
        False,
        description="Also ask the Planner for up to two genres to avoid (shown to the Actor "
        "as 'Avoid ...'). Off by default: SmolLM2-135M left the list empty in 82 % of plans, "
        "and the empty list alone costs about 5 output tokens per step.",
    )
    actor_reason: bool = Field(
        False,
        description="Ask the Actor for a short reason besides the item id. Off by default: "
        "nothing reads it, and SmolLM2-135M fills it with the id again or repeated genre "
        "words (about 20 output tokens per step).",
    )
    plan_anchor: Literal["none", "number", "title"] = Field(
        "none",
        description="Whether and how the Planner names a movie of the history its plan builds "
        "on (shown to the Actor as 'for the fan of ...'): 'none' (by default: SmolLM2-135M "
        "names the first title shown, whatever the user), 'number' (its position in the "
        "numbered history, about 4 output tokens) or 'title' (copied out of the history, "
        "about 15).",
    )
    reply_format: Literal["json", "bare"] = Field(
        "json",
        description="How the Actor, the digit-scale Critic and a genres-only Planner answer: "
        "'json' (an object under a JSON schema) or 'bare' (just the candidate's id, the digit, "
        "or the genres separated by a comma, decoded under vLLM's choice constraint: the "
        "same decision in fewer output tokens). Replies with several fields stay JSON.",
    )
    value_source: Literal["critic", "session"] = Field(
        "session",
        description="Where V(s) comes from when the critic memory has no close state: "
        "'session' (the mean reward of the session so far, the train users' typical rating "
        "before the first step: a value estimate from the episode's data, with no LLM call) or "
        "'critic' (the Critic LLM, BiLLP's). 'session' by default: on dev-block users "
        "(eval/results/dev) SmolLM2-135M's Critic ranked states by their realised return with "
        "Spearman -0.10 to +0.17, the session mean with +0.25 to +0.44; give 'critic' to a "
        "model that can value states.",
    )
    critic_scale: Literal["digit", "number"] = Field(
        "digit",
        description="How the Critic answers: 'digit' (a whole number of the value scale, one "
        "output token; the value is the mean of the scale under the model's probabilities of "
        "each digit, read from the server's token log-probabilities, else the digit itself) "
        "or 'number' (any decimal number, as many tokens as digits written).",
    )
    concurrent_calls: bool = Field(
        True,
        description="Send LLM requests that do not depend on each other together: the "
        "Critic's V(s') with the next step's plan, and V(s) with the first plan. Off: one "
        "request at a time, in the same order (the same seeds and replies).",
    )
    actor_follows_planner: bool = Field(
        False,
        description="Send the Actor's prompt as the next turn of the Planner's conversation "
        "(one thread, as BiLLP's Action follows its Thought). Off: the Actor has its own "
        "conversation, whose instructions and history stay the same through an episode and "
        "are served from the prefix cache; the plan reaches it as text either way.",
    )

    @model_validator(mode="after")
    def _one_overlap_limit(self) -> AgentConfig:
        if self.lesson_overlap_limit and self.fixed_overlap_limit is not None:
            raise ValueError(
                "agent.lesson_overlap_limit and agent.fixed_overlap_limit exclude each other"
            )
        return self

    @model_validator(mode="after")
    def _resolve_preset(self) -> AgentConfig:
        preset = policy_spec(self.name).preset
        # object.__setattr__ avoids re-running this validator through validate_assignment.
        for field, value in (
            ("planner", preset.planner),
            ("macro", preset.macro),
            ("micro", preset.micro),
            ("reflection_retrieval", preset.retrieval),
        ):
            if getattr(self, field) is None:
                object.__setattr__(self, field, value)
        return self

    @property
    def is_llm(self) -> bool:
        """Whether this policy talks to a language model."""
        return policy_spec(self.name).is_llm
