"""call_structured: the valid -> re-ask -> repair -> fallback ladder, and its accounting."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from billp.llm import (
    Accounting,
    ChatMessage,
    LLMRequest,
    LLMRequestError,
    LLMResponse,
    LLMServerError,
    SamplingParams,
    ScriptedLLM,
    TokenUsage,
    call_structured,
)
from billp.llm.structured import REASK_TEMPLATE, StructuredOutcome, schema_name_for

TITLES = {"Toy Story (1995)": 1, "Heat (1995)": 6, "Casino (1995)": 16}


class Pick(BaseModel):
    item_id: int = Field(ge=0, le=100)
    reason: str
    mood: Literal["fun", "calm"] = "fun"


FALLBACK = Pick(item_id=0, reason="fallback")
MESSAGES = [ChatMessage(role="system", content="pick"), ChatMessage(role="user", content="go")]


class FakeClient:
    """Answers the given replies in order; remembers the requests."""

    def __init__(self, replies: Sequence[str], attempts: int = 1) -> None:
        self.replies = list(replies)
        self.requests: list[LLMRequest] = []
        self.attempts = attempts

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        text = self.replies[len(self.requests) - 1]
        return LLMResponse(
            text=text,
            usage=TokenUsage(
                prompt_tokens=10, completion_tokens=len(text.split()), cached_tokens=4
            ),
            latency_s=0.25,
            model="fake",
            attempts=self.attempts,
        )

    async def aclose(self) -> None:
        return None


class FailingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise self.error

    async def aclose(self) -> None:
        return None


def call(
    client: Any,
    accounting: Accounting | None = None,
    *,
    validate: Callable[[Pick], None] | None = None,
    repair: Callable[[str], Pick | None] | None = None,
    reask: bool = True,
    schema: dict[str, Any] | None = None,
    choices: dict[str, Pick] | None = None,
) -> StructuredOutcome[Pick]:
    return asyncio.run(
        call_structured(
            client,
            role="actor",
            messages=MESSAGES,
            output_type=Pick,
            sampling=SamplingParams(temperature=0.5, seed=3),
            accounting=accounting or Accounting(),
            fallback=lambda: FALLBACK,
            schema=schema,
            validate=validate,
            repair=repair,
            reask=reask,
            choices=choices,
        )
    )


def valid(item_id: int = 6, reason: str = "great") -> str:
    return json.dumps({"item_id": item_id, "reason": reason})


def ground_title(text: str) -> Pick | None:
    """A caller repair hook: find a catalogue title in free text."""
    for title, item in TITLES.items():
        if title in text:
            return Pick(item_id=item, reason=f"grounded {title}")
    return None


def reject_odd(value: Pick) -> None:
    if value.item_id % 2:
        raise ValueError(f"item {value.item_id} is not in the shortlist")


def test_valid_first_reply() -> None:
    client, accounting = FakeClient([valid()]), Accounting()
    outcome = call(client, accounting)
    assert outcome.stage == "valid" and outcome.value == Pick(item_id=6, reason="great")
    assert outcome.calls == 1 and outcome.error is None and outcome.raw == valid()
    assert outcome.usage.prompt_tokens == 10 and outcome.latency_s == 0.25
    request = client.requests[0]
    assert request.role == "actor" and request.messages == MESSAGES
    assert request.response_schema == Pick.model_json_schema()
    assert request.schema_name == "Pick" and request.sampling.seed == 3
    stats = accounting.stats("actor")
    assert (stats.calls, stats.schema_failures, stats.reasks, stats.repairs, stats.fallbacks) == (
        1,
        0,
        0,
        0,
        0,
    )


def test_model_override_is_sent() -> None:
    client = FakeClient([valid()])
    asyncio.run(
        call_structured(
            client,
            role="critic",
            messages=MESSAGES,
            output_type=Pick,
            sampling=SamplingParams(),
            accounting=Accounting(),
            fallback=lambda: FALLBACK,
            model="critic-lora",
        )
    )
    assert client.requests[0].model == "critic-lora"


def test_custom_schema_is_sent() -> None:
    schema = Pick.model_json_schema()
    schema["properties"]["item_id"]["enum"] = [2, 6]
    client = FakeClient([valid()])
    call(client, schema=schema)
    assert client.requests[0].response_schema == schema


def test_reask_carries_the_error_and_succeeds() -> None:
    client, accounting = FakeClient(['{"item_id": "six"}', valid(8)]), Accounting()
    outcome = call(client, accounting)
    assert outcome.stage == "reask" and outcome.value.item_id == 8 and outcome.calls == 2
    assert outcome.error is not None and "item_id" in outcome.error
    retry = client.requests[1].messages
    assert retry[: len(MESSAGES)] == MESSAGES
    assert retry[-2] == ChatMessage(role="assistant", content='{"item_id": "six"}')
    assert retry[-1].role == "user" and retry[-1].content.startswith("Your reply was invalid:")
    assert "item_id" in retry[-1].content and "reason" in retry[-1].content
    assert REASK_TEMPLATE.splitlines()[1] in retry[-1].content
    assert client.requests[1].response_schema == client.requests[0].response_schema
    stats = accounting.stats("actor")
    assert (stats.calls, stats.schema_failures, stats.reasks) == (2, 1, 1)
    assert outcome.usage.prompt_tokens == 20 and outcome.latency_s == 0.5


def test_validate_hook_rejection_triggers_reask() -> None:
    client, accounting = FakeClient([valid(7), valid(8)]), Accounting()
    outcome = call(client, accounting, validate=reject_odd)
    assert outcome.stage == "reask" and outcome.value.item_id == 8
    assert "item 7 is not in the shortlist" in client.requests[1].messages[-1].content


def test_repair_of_fenced_reply_without_reask() -> None:
    text = "Here you go:\n```json\n{'item_id': 12, 'reason': 'fun', }\n```"
    client, accounting = FakeClient([text]), Accounting()
    outcome = call(client, accounting, reask=False)
    assert outcome.stage == "repair" and outcome.value == Pick(item_id=12, reason="fun")
    assert outcome.calls == 1 and outcome.raw == text
    stats = accounting.stats("actor")
    assert (stats.schema_failures, stats.reasks, stats.repairs, stats.fallbacks) == (1, 0, 1, 0)


def test_repair_prefers_the_latest_reply() -> None:
    client = FakeClient([f"pick {valid(2)} ok", f"now {valid(4)} ok"])
    outcome = call(client)
    assert outcome.stage == "repair" and outcome.value.item_id == 4


def test_repair_hook_grounds_free_text() -> None:
    client, accounting = (
        FakeClient(["I think Heat (1995) fits.", "Really, Heat (1995)."]),
        Accounting(),
    )
    outcome = call(client, accounting, repair=ground_title)
    assert outcome.stage == "repair" and outcome.value.item_id == 6
    stats = accounting.stats("actor")
    assert (stats.calls, stats.schema_failures, stats.reasks, stats.repairs) == (2, 2, 1, 1)


def test_repaired_value_must_pass_validate() -> None:
    client = FakeClient([f"x {valid(7)}", "Casino (1995)"])
    outcome = call(client, validate=reject_odd, repair=ground_title)
    assert outcome.stage == "repair" and outcome.value.item_id == 16


def test_fallback_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    client, accounting = FakeClient(["nonsense", "still nonsense"]), Accounting()
    with caplog.at_level(logging.WARNING, logger="billp.llm.structured"):
        outcome = call(client, accounting, repair=ground_title)
    assert outcome.stage == "fallback" and outcome.value is FALLBACK
    assert outcome.raw == "still nonsense" and outcome.error
    assert any(
        "fallback" in record.message and "actor" in record.message for record in caplog.records
    )
    stats = accounting.stats("actor")
    assert (stats.calls, stats.schema_failures, stats.reasks, stats.repairs, stats.fallbacks) == (
        2,
        2,
        1,
        0,
        1,
    )
    assert accounting.stats("actor").attempts == 2


def test_hooks_raising_lookup_errors_are_treated_as_rejections() -> None:
    def bad_repair(text: str) -> Pick | None:
        raise KeyError(text)

    outcome = call(FakeClient(["?", "?"]), repair=bad_repair)
    assert outcome.stage == "fallback"


@pytest.mark.parametrize(
    "error",
    [
        LLMServerError("LLM endpoint http://x/v1 failed after 4 attempts: HTTP 503"),
        LLMRequestError("LLM endpoint http://x/v1 rejected the request with HTTP 400"),
    ],
)
def test_server_errors_propagate(error: Exception) -> None:
    accounting = Accounting()
    with pytest.raises(type(error)):
        call(FailingClient(error), accounting)
    assert accounting.stats("actor").fallbacks == 0


def test_with_the_scripted_llm_every_reply_is_valid() -> None:
    accounting = Accounting()
    for seed in range(20):
        outcome = call(ScriptedLLM(seed), accounting)
        assert outcome.stage == "valid"
    assert accounting.stats("actor").schema_failures == 0


def test_schema_name_is_server_safe() -> None:
    assert schema_name_for(Pick) == "Pick"
    weird = type("Reply[int] ü", (BaseModel,), {"__annotations__": {"x": int}})
    name = schema_name_for(weird)
    assert name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


# --- hypothesis: malformed replies ----------------------------------------------------------

REASONS = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N", "Zs", "P"]), max_size=20
)
PICKS = st.builds(
    Pick, item_id=st.integers(0, 100), reason=REASONS, mood=st.sampled_from(["fun", "calm"])
)
Reply = tuple[str, str, Pick | None]


def _truncated(pick: Pick, data: st.DataObject) -> str:
    text = pick.model_dump_json()
    return text[: data.draw(st.integers(0, len(text) - 1))]


def _wrong_types(data: st.DataObject) -> str:
    item = st.one_of(st.text(max_size=5), st.floats(), st.none(), st.integers(101, 10**6))
    bad: dict[str, Any] = {
        "item_id": data.draw(item),
        "reason": data.draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2))),
        "mood": data.draw(st.text(max_size=4)),
    }
    return json.dumps(bad)


def _junk_wrapped(pick: Pick, data: st.DataObject) -> str:
    body = pick.model_dump_json()
    style = data.draw(st.sampled_from(["prose", "fence", "python", "trailing"]))
    junk = data.draw(st.text(alphabet="abc xyz.!?\n", min_size=1, max_size=30))
    if style == "fence":
        return f"{junk}\n```json\n{body}\n```\n{junk}"
    if style == "python":
        return f"{junk} {pick.model_dump()!r} {junk}"
    if style == "trailing":
        return f"{body[:-1]},}} {junk}"
    return f"{junk} {body} {junk}"


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    """(kind, reply text, the Pick it encodes if any) of a malformed or valid reply."""
    data = draw(st.data())
    kind = draw(st.sampled_from(["text", "truncated", "wrong_types", "junk", "valid", "deep"]))
    if kind == "text":
        return kind, draw(st.text(max_size=200)), None
    if kind == "truncated":
        return kind, _truncated(draw(PICKS), data), None
    if kind == "wrong_types":
        return kind, _wrong_types(data), None
    if kind == "deep":
        return kind, "[" * draw(st.integers(1, 5000)) + "{", None
    pick = draw(PICKS)
    if kind == "junk":
        return kind, _junk_wrapped(pick, data), pick
    return kind, pick.model_dump_json(), pick


def _accepts(value: Pick) -> None:
    if value.reason == "forbidden":
        raise ValueError("that reason is forbidden")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=replies(), second=replies(), reask=st.booleans(), use_hook=st.booleans())
def test_malformed_replies_never_raise_and_are_counted(
    first: Reply, second: Reply, reask: bool, use_hook: bool
) -> None:
    accounting = Accounting()
    client = FakeClient([first[1], second[1]])
    outcome = call(
        client,
        accounting,
        validate=_accepts,
        repair=ground_title if use_hook else None,
        reask=reask,
    )
    assert isinstance(outcome.value, Pick)
    _accepts(outcome.value)
    stats = accounting.stats("actor")
    invalid = {"valid": 0, "reask": 1, "repair": 1 + reask, "fallback": 1 + reask}[outcome.stage]
    assert stats.schema_failures == invalid
    assert stats.calls == outcome.calls == len(client.requests)
    assert outcome.calls == (1 if outcome.stage == "valid" or not reask else 2)
    assert stats.reasks == (1 if reask and outcome.stage != "valid" else 0)
    assert stats.repairs == (outcome.stage == "repair")
    assert stats.fallbacks == (outcome.stage == "fallback")
    if outcome.stage == "fallback":
        assert outcome.value is FALLBACK
    kind, _, pick = first
    if kind in ("valid", "junk") and pick is not None and pick.reason != "forbidden":
        if kind == "valid":
            assert outcome.stage == "valid"
        elif not reask:  # junk around a valid object: strictly valid or repaired, never lost
            assert outcome.stage in ("valid", "repair")
        if not reask or outcome.stage == "valid":
            assert outcome.value == pick


# ---------------------------------------------------------------- bare (choice) replies
CHOICES = {"6": Pick(item_id=6, reason=""), "16": Pick(item_id=16, reason="")}


def call_choices(
    client: Any,
    accounting: Accounting,
    *,
    validate: Callable[[Pick], None] | None = None,
    repair: Callable[[str], Pick | None] | None = None,
) -> StructuredOutcome[Pick]:
    """:func:`call` with CHOICES (and a schema that must not be sent)."""
    return call(
        client,
        accounting,
        validate=validate,
        repair=repair,
        schema={"ignored": True},
        choices=CHOICES,
    )


def test_choices_replace_the_schema_and_map_the_bare_reply() -> None:
    client, accounting = FakeClient([" 16\n"]), Accounting()
    outcome = call_choices(client, accounting)
    assert outcome.stage == "valid" and outcome.value == CHOICES["16"]
    request = client.requests[0]
    assert request.choices == ["6", "16"] and request.response_schema is None
    assert accounting.stats("actor").schema_failures == 0


def test_a_reply_outside_the_choices_is_reasked_with_the_choices() -> None:
    client, accounting = FakeClient(["7", "6"]), Accounting()
    outcome = call_choices(client, accounting)
    assert outcome.stage == "reask" and outcome.value == CHOICES["6"]
    reask = client.requests[1].messages[-1].content
    assert "'7' is not one of the 2 choices" in reask and reask.endswith("one of: 6, 16.")
    assert client.requests[1].choices == ["6", "16"]
    assert accounting.stats("actor").schema_failures == 1


def test_a_rejected_choice_goes_to_the_repair_hook_not_to_json_repair() -> None:
    def only_even(value: Pick) -> None:
        if value.item_id != 6:
            raise ValueError("not allowed")

    client, accounting = FakeClient(["16", '{"item_id": 6, "reason": "x"}']), Accounting()
    outcome = call_choices(client, accounting, validate=only_even, repair=ground_title)
    assert outcome.stage == "fallback", "a JSON object is not a bare answer, nor repaired as one"
    client = FakeClient(["16", "Heat (1995)"])
    outcome = call_choices(client, Accounting(), validate=only_even, repair=ground_title)
    assert outcome.stage == "repair" and outcome.value.item_id == 6


def test_a_request_has_a_schema_or_choices_not_both() -> None:
    with pytest.raises(ValueError, match="schema or by choices"):
        LLMRequest(role="a", messages=MESSAGES, response_schema={}, choices=["1"])
    with pytest.raises(ValueError, match="must not be empty"):
        LLMRequest(role="a", messages=MESSAGES, choices=[])


def test_the_scripted_llm_answers_one_of_the_choices() -> None:
    request = LLMRequest(role="actor", messages=MESSAGES, choices=["6", "16"])
    replies = {asyncio.run(ScriptedLLM(seed=s).complete(request)).text for s in range(20)}
    assert replies == {"6", "16"}
