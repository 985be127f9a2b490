"""ScriptedLLM: deterministic, seed-dependent and always valid for the requested schema."""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, create_model

from billp.llm import ChatMessage, LLMRequest, SamplingParams, ScriptedLLM, ScriptedSchemaError
from billp.llm.scripted import MAX_DEPTH

SEEDS = range(40)


class Mood(enum.StrEnum):
    HAPPY = "happy"
    BORED = "bored"


class Thought(BaseModel):
    text: str = Field(min_length=5, max_length=40)
    confidence: float = Field(ge=0, le=1)


class PlannerReply(BaseModel):
    thought: Thought
    plan: str
    genres: list[str] = Field(min_length=1, max_length=3)
    mood: Mood
    note: str | None = None


class ActorReply(BaseModel):
    item_id: int
    reason: str = Field(max_length=60)


class CriticReply(BaseModel):
    value: float = Field(gt=-5, lt=5)
    verdict: Literal["good", "bad", "unsure"]


class ReflectorReply(BaseModel):
    reflection: str = Field(min_length=1)
    avoid: list[Annotated[int, Field(ge=0, le=1681)]] = Field(default_factory=list, max_length=5)
    tags: set[Literal["variety", "quality", "novelty", "length"]] = Field(min_length=2)
    pair: tuple[int, str]
    weights: dict[str, float] = Field(default_factory=dict)


class Node(BaseModel):
    label: str
    children: list[Node] = Field(default_factory=list, max_length=2)


MODELS: list[type[BaseModel]] = [PlannerReply, ActorReply, CriticReply, ReflectorReply, Node]


def request_for(
    schema: dict[str, Any] | None, content: str = "hello", role: str = "planner", **kw: Any
) -> LLMRequest:
    return LLMRequest(
        role=role,
        messages=[
            ChatMessage(role="system", content="be brief"),
            ChatMessage(role="user", content=content),
        ],
        response_schema=schema,
        **kw,
    )


def reply(llm: ScriptedLLM, request: LLMRequest) -> str:
    return asyncio.run(llm.complete(request)).text


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_replies_validate_against_realistic_models(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for seed in SEEDS:
        text = ScriptedLLM(seed).generate(request_for(schema, content=f"step {seed}"))
        validator.validate(json.loads(text))
        model.model_validate_json(text)


def test_injected_integer_enum_as_the_actor_uses() -> None:
    candidates = [3, 17, 42, 1500]
    schema = ActorReply.model_json_schema()
    schema["properties"]["item_id"]["enum"] = candidates
    chosen = set()
    for seed in SEEDS:
        value = ActorReply.model_validate_json(ScriptedLLM(seed).generate(request_for(schema)))
        assert value.item_id in candidates
        chosen.add(value.item_id)
    assert len(chosen) > 1


def test_same_seed_and_request_give_identical_text() -> None:
    schema = PlannerReply.model_json_schema()
    request = request_for(schema, sampling=SamplingParams(seed=3))
    assert reply(ScriptedLLM(5), request) == reply(ScriptedLLM(5), request)


def test_different_seeds_usually_differ() -> None:
    schema = PlannerReply.model_json_schema()
    texts = {ScriptedLLM(seed).generate(request_for(schema)) for seed in range(10)}
    assert len(texts) >= 8


def test_role_messages_and_sampling_seed_change_the_reply() -> None:
    schema = PlannerReply.model_json_schema()
    llm = ScriptedLLM(0)
    base = llm.generate(request_for(schema))
    assert llm.generate(request_for(schema, role="critic")) != base
    assert llm.generate(request_for(schema, content="other")) != base
    assert llm.generate(request_for(schema, sampling=SamplingParams(seed=1))) != base


def test_free_text_without_schema_and_usage_counts() -> None:
    request = request_for(None, content="three words here")
    response = asyncio.run(ScriptedLLM(1).complete(request))
    assert response.text and not response.text.startswith("{")
    assert response.usage.prompt_tokens == 2 + 3
    assert response.usage.completion_tokens == len(response.text.split())
    assert response.model == "scripted"
    assert asyncio.run(ScriptedLLM(1).complete(request_for(None, model="lora"))).model == "lora"


@pytest.mark.parametrize(
    ("schema", "check"),
    [
        ({"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5}, lambda v: v == 4),
        ({"type": "integer", "minimum": 10, "multipleOf": 7}, lambda v: v >= 14 and v % 7 == 0),
        ({"type": "number", "exclusiveMinimum": 0, "maximum": 0.001}, lambda v: 0 < v <= 0.001),
        ({"type": "number", "minimum": -2.5}, lambda v: v >= -2.5),
        ({"type": "integer", "maximum": -1000}, lambda v: v <= -1000),
        (
            {"type": "number", "minimum": 1, "maximum": 3, "multipleOf": 0.5},
            lambda v: 1 <= v <= 3 and (v * 2) == int(v * 2),
        ),
        ({"const": "fixed"}, lambda v: v == "fixed"),
        ({"type": ["string", "null"]}, lambda v: v is None or isinstance(v, str)),
        ({"type": "string", "minLength": 50}, lambda v: len(v) >= 50),
        ({"type": "string", "maxLength": 0}, lambda v: v == ""),
        ({"type": "string", "minLength": 3, "maxLength": 3}, lambda v: len(v) == 3),
        ({"type": "string", "format": "date-time"}, lambda v: "T" in v),
        ({}, lambda v: isinstance(v, str)),
        (
            {"type": "array", "items": {"enum": [1, 2, 3]}, "uniqueItems": True, "minItems": 3},
            lambda v: sorted(v) == [1, 2, 3],
        ),
        (
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "boolean"}],
                "items": False,
                "minItems": 2,
                "maxItems": 2,
            },
            lambda v: isinstance(v[0], int) and isinstance(v[1], bool),
        ),
        (
            {
                "allOf": [{"$ref": "#/$defs/A"}],
                "$defs": {
                    "A": {
                        "type": "object",
                        "properties": {"a": {"type": "boolean"}},
                        "required": ["a"],
                    }
                },
            },
            lambda v: isinstance(v["a"], bool),
        ),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 2},
            lambda v: len(v) == 2 and all(isinstance(x, int) for x in v.values()),
        ),
    ],
)
def test_schema_keywords(schema: dict[str, Any], check: Any) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    for seed in range(20):
        value = json.loads(ScriptedLLM(seed).generate(request_for(schema)))
        validator.validate(value)
        assert check(value), value


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"$ref": "#/$defs/Missing"}, "does not resolve"),
        ({"$ref": "http://elsewhere/schema.json"}, "local"),
        ({"type": "integer", "minimum": 5, "maximum": 4}, "empty integer range"),
        ({"enum": []}, "empty enum"),
        ({"type": "array", "items": {"const": 1}, "uniqueItems": True, "minItems": 2}, "unique"),
        ({"type": "object", "properties": {}, "required": ["x"]}, "undefined"),
        ({"type": "tuple"}, "unsupported type"),
    ],
)
def test_unsatisfiable_schemas_raise_clear_errors(schema: dict[str, Any], match: str) -> None:
    with pytest.raises(ScriptedSchemaError, match=match):
        ScriptedLLM(0).generate(request_for(schema))


def test_recursive_models_terminate() -> None:
    schema = Node.model_json_schema()
    for seed in SEEDS:
        node = Node.model_validate_json(ScriptedLLM(seed).generate(request_for(schema)))
        depth, frontier = 0, [node]
        while frontier and depth <= MAX_DEPTH + 2:
            frontier = [child for item in frontier for child in item.children]
            depth += 1
        assert not frontier


# --- hypothesis: random pydantic models -----------------------------------------------------

_names = itertools.count()
WORDS = ["alpha", "beta", "gamma", "delta", "eps"]


def _bounded_int() -> st.SearchStrategy[Any]:
    return st.tuples(st.integers(-50, 50), st.integers(0, 100)).map(
        lambda t: Annotated[int, Field(ge=t[0], le=t[0] + t[1])]
    )


def _bounded_float() -> st.SearchStrategy[Any]:
    return st.tuples(st.integers(-5, 5), st.integers(1, 10)).map(
        lambda t: Annotated[float, Field(gt=t[0], lt=t[0] + t[1] / 10)]
    )


def _bounded_str() -> st.SearchStrategy[Any]:
    return st.tuples(st.integers(0, 8), st.integers(0, 30)).map(
        lambda t: Annotated[str, Field(min_length=t[0], max_length=t[0] + t[1])]
    )


def _literal() -> st.SearchStrategy[Any]:
    return st.lists(st.sampled_from(WORDS), min_size=1, max_size=4, unique=True).map(
        lambda xs: Literal[tuple(xs)]  # type: ignore[misc]
    )


def _enum() -> st.SearchStrategy[Any]:
    return st.lists(st.sampled_from(WORDS), min_size=1, max_size=4, unique=True).map(
        lambda xs: enum.Enum(f"E{next(_names)}", {w.upper(): w for w in xs})
    )


def _model(fields: list[tuple[Any, bool]]) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for index, (annotation, optional) in enumerate(fields):
        definitions[f"f{index}"] = (annotation | None, None) if optional else (annotation, ...)
    return create_model(f"M{next(_names)}", **definitions)


LEAVES = st.one_of(
    _bounded_int(),
    _bounded_float(),
    _bounded_str(),
    _literal(),
    _enum(),
    st.sampled_from([int, float, bool, str]),
)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        children.map(lambda t: t | None),
        st.tuples(children, st.integers(0, 3), st.integers(0, 3)).map(
            lambda t: Annotated[list[t[0]], Field(min_length=t[1], max_length=t[1] + t[2])]
        ),
        st.lists(st.tuples(children, st.booleans()), min_size=1, max_size=4).map(_model),
    )


MODEL_STRATEGY = st.lists(
    st.tuples(st.recursive(LEAVES, _extend, max_leaves=8), st.booleans()), min_size=1, max_size=5
).map(_model)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=MODEL_STRATEGY, seed=st.integers(0, 2**32))
def test_generated_models_always_validate(model: type[BaseModel], seed: int) -> None:
    schema = model.model_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for offset in range(5):
        text = ScriptedLLM(seed + offset).generate(request_for(schema))
        validator.validate(json.loads(text))
        model.model_validate_json(text)
