"""A role = a template + an output model + sampling settings, bound to an LLM client.

Calling a role renders its input model, asks the LLM for a structured reply, and returns
the parsed value together with a :class:`CallTrace` that the runner writes to
``steps.jsonl`` (template and prompt hashes, raw and parsed reply, escalation stage,
tokens and latency).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from billp.agents.prompts import PromptLibrary
from billp.llm import Accounting, ChatMessage, LLMClient, SamplingParams, call_structured
from billp.llm.messages import TokenLogprobs

OutT = TypeVar("OutT", bound=BaseModel)


class CallTrace(BaseModel):
    """What one role call did, as recorded per step."""

    role: str
    template_hash: str
    prompt_hash: str
    raw: str | None
    parsed: dict[str, Any]
    stage: str
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    latency_s: float
    calls: int


class RoleResult(BaseModel, Generic[OutT]):
    """A role's parsed value, its trace, and the conversation as the model saw it."""

    value: OutT
    trace: CallTrace
    turns: list[ChatMessage]
    """The request's messages followed by the reply, to continue from (e.g. Planner → Actor)."""
    logprobs: list[TokenLogprobs] | None = None
    """Per generated token of a valid reply, when the call asked for them."""


class RoleSettings(BaseModel):
    """Per-role sampling and model choice."""

    temperature: float
    max_tokens: int
    model: str | None = None


class Role(Generic[OutT]):
    """One BiLLP role bound to a client, a prompt library and the shared accounting."""

    def __init__(
        self,
        name: str,
        output_type: type[OutT],
        client: LLMClient,
        prompts: PromptLibrary,
        accounting: Accounting,
        settings: RoleSettings,
        reask: bool = True,
    ) -> None:
        self.name = name
        self.output_type = output_type
        self._client = client
        self._prompts = prompts
        self._accounting = accounting
        self._settings = settings
        self._reask = reask

    def template_source(self) -> str:
        """The source of this role's template (for echo checks)."""
        return self._prompts.source(self.name)

    async def __call__(
        self,
        data: BaseModel,
        *,
        fallback: Callable[[], OutT],
        seed: int,
        schema: dict[str, Any] | None = None,
        validate: Callable[[OutT], None] | None = None,
        repair: Callable[[str], OutT | None] | None = None,
        prior: list[ChatMessage] | None = None,
        top_logprobs: int | None = None,
        choices: Mapping[str, OutT] | None = None,
    ) -> RoleResult[OutT]:
        """Render ``data``, ask the LLM, and return the validated (or fallback) value.

        ``prior`` turns are sent before this role's prompt: with
        ``agent.actor_follows_planner`` the Actor continues the Planner's conversation, as
        BiLLP's Action follows its Thought, and the server's prefix cache reuses everything
        the Planner's call already computed. ``top_logprobs`` asks for the log-probabilities
        of that many most likely tokens at each generated position (the result's ``logprobs``).
        ``choices`` asks for a bare answer, one of its keys, instead of JSON (``schema`` unused).
        """
        prompt = self._prompts.render(self.name, data)
        messages = [*(prior or []), ChatMessage(role="user", content=prompt.text)]
        sampling = SamplingParams(
            temperature=self._settings.temperature,
            max_tokens=self._settings.max_tokens,
            seed=seed,
            top_logprobs=top_logprobs,
        )
        outcome = await call_structured(
            self._client,
            role=self.name,
            messages=messages,
            output_type=self.output_type,
            sampling=sampling,
            accounting=self._accounting,
            fallback=fallback,
            schema=schema,
            validate=validate,
            repair=repair,
            reask=self._reask,
            model=self._settings.model,
            choices=choices,
        )
        trace = CallTrace(
            role=self.name,
            template_hash=prompt.template_hash,
            prompt_hash=prompt.prompt_hash,
            raw=outcome.raw,
            parsed=outcome.value.model_dump(mode="json"),
            stage=outcome.stage,
            error=outcome.error,
            prompt_tokens=outcome.usage.prompt_tokens,
            completion_tokens=outcome.usage.completion_tokens,
            cached_tokens=outcome.usage.cached_tokens,
            latency_s=round(outcome.latency_s, 6),
            calls=outcome.calls,
        )
        reply = outcome.raw if outcome.stage == "valid" and outcome.raw else None
        turns = [
            *messages,
            ChatMessage(role="assistant", content=reply or outcome.value.model_dump_json()),
        ]
        return RoleResult[self.output_type](  # type: ignore[name-defined]
            value=outcome.value, trace=trace, turns=turns, logprobs=outcome.logprobs
        )
