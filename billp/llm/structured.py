"""Structured outputs with an escalation ladder: valid -> re-ask -> repair -> fallback.

1. The request carries a JSON schema; the reply is parsed strictly, validated against the
   output model and the caller's ``validate`` hook. A request may instead carry ``choices``
   (reply string -> value): the reply must be one of them, a bare answer that costs no JSON
   framing in output tokens (vLLM decodes it under a choice constraint).
2. If invalid (and ``reask``): one re-ask carrying the model's reply and the error.
3. JSON repair (:mod:`billp.llm.json_repair`) on the replies, latest first, then the caller's
   ``repair`` hook (free text -> value, e.g. grounding a title in the catalogue).
4. The caller's ``fallback()``, with a logged warning.

Every invalid reply counts as a schema failure; re-asks, repairs and fallbacks are counted per
role in :class:`~billp.llm.accounting.Accounting`. Server errors (:class:`LLMServerError`,
:class:`LLMRequestError`) propagate: a dead server is an error, not a fallback. ``validate``
and ``repair`` reject a value by raising ``ValueError`` or ``LookupError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from billp.llm.accounting import Accounting
from billp.llm.client import LLMClient
from billp.llm.json_repair import repair_json_object
from billp.llm.messages import (
    ChatMessage,
    LLMRequest,
    LLMResponse,
    SamplingParams,
    TokenLogprobs,
    TokenUsage,
)

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
Stage = Literal["valid", "reask", "repair", "fallback"]

MAX_ERROR_CHARS = 1_000
"""Characters of a validation error quoted back to the model and kept in the outcome."""
MAX_ECHO_CHARS = 4_000
"""Characters of the invalid reply echoed back as the assistant turn of a re-ask."""
MAX_ERROR_ITEMS = 8
"""Pydantic error items listed in one error message."""
SCHEMA_NAME_CHARS = 64
"""Longest schema name OpenAI-compatible servers accept."""
DEFAULT_SCHEMA_NAME = "reply"
REASK_TEMPLATE = (
    "Your reply was invalid: {error}\n"
    "Answer again with only a JSON object that follows the required schema."
)
REASK_CHOICE_TEMPLATE = "Your reply was invalid: {error}\nAnswer again with only one of: {choices}."


class StructuredOutcome(BaseModel, Generic[T]):
    """The value obtained and how: stage reached, last raw reply, last error, cost."""

    value: T
    stage: Stage
    raw: str | None
    error: str | None
    usage: TokenUsage
    latency_s: float
    calls: int
    logprobs: list[TokenLogprobs] | None = None
    """Per generated token of the reply the value was read from, when the request asked for
    them and the value came from a valid reply (not a repair or a fallback)."""


def schema_name_for(output_type: type[BaseModel]) -> str:
    """A server-acceptable schema name (``[A-Za-z0-9_-]``, at most 64 chars) for a model."""
    name = "".join(
        c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in output_type.__name__
    )
    return name[:SCHEMA_NAME_CHARS] or DEFAULT_SCHEMA_NAME


def format_validation_error(error: ValidationError) -> str:
    """Compact ``field: message`` lines of a Pydantic error, for the model to read."""
    items = error.errors(include_url=False)
    parts = []
    for item in items[:MAX_ERROR_ITEMS]:
        loc = ".".join(str(part) for part in item["loc"]) or "<root>"
        parts.append(f"{loc}: {item['msg']}")
    if len(items) > MAX_ERROR_ITEMS:
        parts.append(f"... and {len(items) - MAX_ERROR_ITEMS} more")
    return "; ".join(parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def _check(value: T, validate: Callable[[T], None] | None) -> str | None:
    """The caller's verdict on ``value``: None if accepted, else the reason."""
    if validate is None:
        return None
    try:
        validate(value)
    except (ValueError, LookupError) as exc:
        return f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
    return None


def parse_reply(
    text: str, output_type: type[T], validate: Callable[[T], None] | None = None
) -> tuple[T | None, str | None]:
    """Strictly parse ``text`` as a JSON ``output_type`` accepted by ``validate``.

    Returns ``(value, None)`` or ``(None, reason)``.
    """
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"the reply is not a JSON object ({exc})"
    return _validated(data, output_type, validate)


def parse_choice(
    text: str, choices: Mapping[str, T], validate: Callable[[T], None] | None = None
) -> tuple[T | None, str | None]:
    """The value of the choice ``text`` names (surrounding whitespace ignored), if ``validate``
    accepts it. Returns ``(value, None)`` or ``(None, reason)``."""
    value = choices.get(text.strip())
    if value is None:
        return None, f"the reply {_clip(text, 40)!r} is not one of the {len(choices)} choices"
    reason = _check(value, validate)
    return (value, None) if reason is None else (None, reason)


def _validated(
    data: Any, output_type: type[T], validate: Callable[[T], None] | None
) -> tuple[T | None, str | None]:
    try:
        value = output_type.model_validate(data)
    except ValidationError as exc:
        return None, format_validation_error(exc)
    reason = _check(value, validate)
    return (value, None) if reason is None else (None, reason)


def _repaired(
    raw: str,
    output_type: type[T],
    validate: Callable[[T], None] | None,
    repair: Callable[[str], T | None] | None,
    json_repair: bool = True,
) -> T | None:
    """JSON repair of ``raw`` (unless a bare answer was asked for), then the caller's hook;
    the first valid value or None."""
    data = repair_json_object(raw) if json_repair else None
    if data is not None:
        value, _ = _validated(data, output_type, validate)
        if value is not None:
            return value
    if repair is None:
        return None
    try:
        hooked = repair(raw)
    except (ValueError, LookupError) as exc:
        logger.debug("repair hook rejected the reply: %s", exc)
        return None
    if hooked is None:
        return None
    value, _ = _validated(hooked, output_type, validate)
    return value


def _reask_text(error: str | None, choices: list[str] | None) -> str:
    """The user turn of a re-ask: the error, and what to answer with."""
    error = _clip(error or "", MAX_ERROR_CHARS)
    if choices is None:
        return REASK_TEMPLATE.format(error=error)
    return REASK_CHOICE_TEMPLATE.format(error=error, choices=_clip(", ".join(choices), 400))


class _Calls:
    """Usage, latency and count of the calls made for one structured value."""

    def __init__(self, client: LLMClient, role: str, accounting: Accounting) -> None:
        self.client = client
        self.role = role
        self.accounting = accounting
        self.usage = TokenUsage()
        self.latency_s = 0.0
        self.count = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.accounting.request_started()
        try:
            response = await self.client.complete(request)
        finally:
            self.accounting.request_ended()
        self.accounting.record_response(self.role, response)
        self.usage = self.usage + response.usage
        self.latency_s += response.latency_s
        self.count += 1
        return response

    def outcome(
        self,
        value: T,
        stage: Stage,
        raw: str | None,
        error: str | None,
        logprobs: list[TokenLogprobs] | None = None,
    ) -> StructuredOutcome[T]:
        return StructuredOutcome(
            value=value,
            stage=stage,
            raw=raw,
            error=None if error is None else _clip(error, MAX_ERROR_CHARS),
            usage=self.usage,
            latency_s=self.latency_s,
            calls=self.count,
            logprobs=logprobs,
        )


async def call_structured(
    client: LLMClient,
    *,
    role: str,
    messages: Sequence[ChatMessage],
    output_type: type[T],
    sampling: SamplingParams,
    accounting: Accounting,
    fallback: Callable[[], T],
    schema: dict[str, Any] | None = None,
    validate: Callable[[T], None] | None = None,
    repair: Callable[[str], T | None] | None = None,
    reask: bool = True,
    model: str | None = None,
    choices: Mapping[str, T] | None = None,
) -> StructuredOutcome[T]:
    """Obtain a valid ``output_type`` from ``client``, escalating as the module describes.

    With ``choices`` the request asks for one of their keys instead of a JSON object
    (``schema`` is then not sent) and the reply's value is the key's.

    ``model`` overrides the client's model for this role (``LLMRequest.model``, e.g. a LoRA
    adapter name); ``None`` keeps the client's default.

    Raises:
        LLMServerError, LLMRequestError: the server failed; never turned into a fallback.
    """
    calls = _Calls(client, role, accounting)
    if choices is not None:
        response_schema = None
        choice_list: list[str] | None = list(choices)
    else:
        response_schema = schema if schema is not None else output_type.model_json_schema()
        choice_list = None
    request = LLMRequest(
        role=role,
        messages=list(messages),
        response_schema=response_schema,
        schema_name=schema_name_for(output_type),
        choices=choice_list,
        sampling=sampling,
        model=model,
    )

    def parse(text: str) -> tuple[T | None, str | None]:
        if choices is not None:
            return parse_choice(text, choices, validate)
        return parse_reply(text, output_type, validate)

    first = await calls.complete(request)
    value, error = parse(first.text)
    if value is not None:
        return calls.outcome(value, "valid", first.text, None, first.logprobs)
    accounting.count(role, "schema_failures")
    raws = [first.text]

    if reask:
        accounting.count(role, "reasks")
        retry = request.model_copy(
            update={
                "messages": [
                    *request.messages,
                    ChatMessage(role="assistant", content=_clip(first.text, MAX_ECHO_CHARS)),
                    ChatMessage(role="user", content=_reask_text(error, choice_list)),
                ]
            }
        )
        second = await calls.complete(retry)
        value, second_error = parse(second.text)
        if value is not None:
            return calls.outcome(value, "reask", second.text, error, second.logprobs)
        accounting.count(role, "schema_failures")
        error = second_error
        raws.insert(0, second.text)

    for raw in raws:
        value = _repaired(raw, output_type, validate, repair, json_repair=choices is None)
        if value is not None:
            accounting.count(role, "repairs")
            return calls.outcome(value, "repair", raw, error)

    logger.warning(
        "role %s: no valid %s after %d call(s), using the fallback; last error: %s",
        role,
        output_type.__name__,
        calls.count,
        _clip(error or "", MAX_ERROR_CHARS),
    )
    value = fallback()
    accounting.count(role, "fallbacks")
    return calls.outcome(value, "fallback", raws[0], error)
