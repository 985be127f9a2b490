"""The scripted offline LLM: a deterministic, seed-dependent generator of schema-valid JSON.

It knows nothing about recommendation. Given a request with a JSON schema it draws an
instance of that schema from a RNG seeded by ``sha256(seed, role, messages,
sampling.seed)``; given choices it draws one of them; without either it answers a short
phrase. Supported schema features are those Pydantic produces: ``object``
(``properties``/``required``/``additionalProperties``), ``$ref``/``$defs``,
``anyOf``/``oneOf``/``allOf``, ``enum``/``const``, ``string`` (``minLength``/``maxLength``,
a few ``format`` values), ``integer``/``number`` (``minimum``/``maximum``/``exclusive*``/
``multipleOf``), ``boolean``, ``null`` and ``array``
(``items``/``prefixItems``/``minItems``/``maxItems``/``uniqueItems``). ``pattern`` is not
supported (it is ignored). Free-form objects (``additionalProperties`` only, e.g.
``dict[str, X]``) get just the entries that ``minProperties`` demands.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from typing import Any

from billp.llm.messages import LLMRequest, LLMResponse, TokenUsage

SCRIPTED_MODEL_NAME = "scripted"
"""``LLMResponse.model`` when the request names no model."""
MAX_DEPTH = 8
"""Nesting depth beyond which optional parts are left out and arrays kept minimal."""
DEFAULT_INT_SPAN = 100
"""Width of the integer range drawn from when the schema leaves a side unbounded."""
DEFAULT_NUMBER_SPAN = 10.0
"""Width of the number range drawn from when the schema leaves a side unbounded."""
NUMBER_DECIMALS = 3
"""Decimals kept in generated numbers (when the bounds allow)."""
DEFAULT_MAX_ITEMS = 3
"""Most array items generated when the schema sets no ``maxItems``."""
OPTIONAL_PROPERTY_PROBABILITY = 0.5
"""Chance that a property outside ``required`` is generated."""
UNIQUE_ITEM_TRIES = 20
"""Draws per array slot when looking for a value not already in a ``uniqueItems`` array."""
PHRASE_WORDS = (2, 5)
"""Fewest and most words in a generated phrase."""
WORDS = (
    "a",
    "bright",
    "calm",
    "quiet",
    "story",
    "about",
    "friends",
    "and",
    "the",
    "river",
    "new",
    "idea",
    "worth",
    "trying",
    "today",
    "classic",
    "fresh",
    "light",
    "warm",
    "choice",
    "more",
    "variety",
    "keep",
    "exploring",
    "good",
    "balance",
    "with",
    "some",
    "surprise",
    "next",
)

JsonValue = Any


class ScriptedSchemaError(ValueError):
    """The schema uses something the scripted LLM cannot satisfy (names the schema path)."""


def request_seed(seed: int, request: LLMRequest) -> int:
    """The RNG seed for ``request``: sha256 over (seed, role, messages, sampling.seed)."""
    material = json.dumps(
        [
            seed,
            request.role,
            [message.model_dump() for message in request.messages],
            request.sampling.seed,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return int.from_bytes(hashlib.sha256(material.encode("utf-8")).digest()[:8], "big")


class SchemaSampler:
    """Draws instances of one JSON schema (with its ``$defs``) from a RNG."""

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def sample(self) -> JsonValue:
        """One instance of the root schema."""
        return self._value(self.root, 0, "#")

    def phrase(self, min_length: int = 0, max_length: int | None = None) -> str:
        """A short readable phrase, padded or cut to the length bounds."""
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(*PHRASE_WORDS))]
        text = " ".join(words)
        if len(text) < min_length:
            # each extra word adds at least two characters ("a" plus a space)
            extra = (self.rng.choice(WORDS) for _ in range(min_length - len(text)))
            text = " ".join([text, *extra])[: max(min_length, len(text))]
        if max_length is not None:
            text = text[:max_length].rstrip().ljust(min_length, "a")[:max_length]
        return text

    def _resolve(self, ref: str, path: str) -> dict[str, Any]:
        if not ref.startswith("#/"):
            raise ScriptedSchemaError(f"{path}: only local $ref values are supported, got {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise ScriptedSchemaError(f"{path}: $ref {ref!r} does not resolve")
            node = node[part]
        if not isinstance(node, dict):
            raise ScriptedSchemaError(f"{path}: $ref {ref!r} is not a schema object")
        return node

    def _value(self, schema: Any, depth: int, path: str) -> JsonValue:
        if schema is True or schema == {}:
            return self.phrase()
        if not isinstance(schema, dict):
            raise ScriptedSchemaError(f"{path}: expected a schema object, got {schema!r}")
        if depth > MAX_DEPTH * 4:
            raise ScriptedSchemaError(f"{path}: schema recursion does not terminate")
        if "$ref" in schema:
            target = self._resolve(schema["$ref"], path)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            resolved = {**target, **rest} if rest else target
            return self._value(resolved, depth + 1, f"{path}/$ref")
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            options = list(schema["enum"])
            if not options:
                raise ScriptedSchemaError(f"{path}: empty enum")
            return self.rng.choice(options)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._value(self._pick_branch(schema[key], depth, path), depth + 1, path)
        if "allOf" in schema:
            combined: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                resolved = self._resolve(part["$ref"], path) if "$ref" in part else part
                combined = {**resolved, **combined}
            return self._value(combined, depth + 1, path)
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise ScriptedSchemaError(f"{path}: empty type list")
            kind = "null" if depth >= MAX_DEPTH and "null" in kind else self.rng.choice(kind)
        if kind is None:
            kind = self._infer_type(schema)
        generator = {
            "object": self._object,
            "array": self._array,
            "string": self._string,
            "integer": self._integer,
            "number": self._number,
            "boolean": self._boolean,
            "null": self._null,
        }.get(kind)
        if generator is None:
            raise ScriptedSchemaError(f"{path}: unsupported type {kind!r}")
        return generator(schema, depth, path)

    def _boolean(self, schema: dict[str, Any], depth: int, path: str) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict[str, Any], depth: int, path: str) -> None:
        return None

    def _pick_branch(self, branches: list[Any], depth: int, path: str) -> Any:
        if not branches:
            raise ScriptedSchemaError(f"{path}: empty anyOf/oneOf")
        if depth >= MAX_DEPTH:
            for branch in branches:
                if isinstance(branch, dict) and branch.get("type") == "null":
                    return branch
        return self.rng.choice(branches)

    @staticmethod
    def _infer_type(schema: dict[str, Any]) -> str:
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return "number"
        return "string"

    def _object(self, schema: dict[str, Any], depth: int, path: str) -> dict[str, JsonValue]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        missing = required - set(properties)
        if missing:
            raise ScriptedSchemaError(f"{path}: required properties {sorted(missing)} undefined")
        out: dict[str, JsonValue] = {}
        for name, sub in properties.items():
            wanted = name in required or (
                depth < MAX_DEPTH and self.rng.random() < OPTIONAL_PROPERTY_PROBABILITY
            )
            if wanted:
                out[name] = self._value(sub, depth + 1, f"{path}/properties/{name}")
        # Free-form entries only as many as minProperties asks: a JSON schema cannot say that
        # keys must parse as integers (Pydantic's dict[int, X]), so the empty object is safest.
        extra = schema.get("additionalProperties")
        wanted_entries = int(schema.get("minProperties", 0)) - len(out)
        if isinstance(extra, dict) and wanted_entries > 0:
            names_schema = schema.get("propertyNames", {"type": "string", "minLength": 1})
            for index in range(wanted_entries):
                key = f"{self._value(names_schema, depth + 1, f'{path}/propertyNames')}"
                key = key if key not in out else f"{key}{index}"
                out[key] = self._value(extra, depth + 1, f"{path}/additionalProperties")
        return out

    def _array(self, schema: dict[str, Any], depth: int, path: str) -> list[JsonValue]:
        prefix: list[Any] = schema.get("prefixItems", [])
        items = schema.get("items", {} if not prefix else False)
        low = max(int(schema.get("minItems", 0)), len(prefix) if items is False else 0)
        default_high = low if depth >= MAX_DEPTH else max(low, DEFAULT_MAX_ITEMS)
        high = int(schema.get("maxItems", default_high))
        if items is False:
            high = min(high, len(prefix))
        if high < low:
            raise ScriptedSchemaError(f"{path}: maxItems {high} < minItems {low}")
        count = self.rng.randint(low, min(high, max(low, default_high)))
        unique = bool(schema.get("uniqueItems", False))
        out: list[JsonValue] = []
        seen: set[str] = set()
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else items
            for _ in range(UNIQUE_ITEM_TRIES if unique else 1):
                value = self._value(sub, depth + 1, f"{path}/items/{index}")
                marker = json.dumps(value, sort_keys=True) if unique else ""
                if not unique or marker not in seen:
                    break
            else:
                if len(out) >= low:
                    break  # no fresh value found; a shorter array is still valid
                raise ScriptedSchemaError(
                    f"{path}: cannot draw {low} unique items from the item schema"
                )
            seen.add(marker)
            out.append(value)
        return out

    def _string(self, schema: dict[str, Any], depth: int, path: str) -> str:
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        fmt = schema.get("format")
        if fmt == "date-time":
            return f"2024-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}T12:00:00Z"
        if fmt == "date":
            return f"2024-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}"
        if fmt == "time":
            return f"1{self.rng.randint(0, 9)}:30:00"
        if fmt == "uuid":
            return f"{self.rng.getrandbits(32):08x}-0000-4000-8000-{self.rng.getrandbits(48):012x}"
        if high is not None and int(high) < low:
            raise ScriptedSchemaError(f"{path}: maxLength {high} < minLength {low}")
        return self.phrase(low, None if high is None else int(high))

    def _integer(self, schema: dict[str, Any], depth: int, path: str) -> int:
        low, high = self._bounds(schema)
        lo: int | None = None
        hi: int | None = None
        if low is not None:
            lo = math.floor(low[0]) + 1 if low[1] else math.ceil(low[0])
        if high is not None:
            hi = math.ceil(high[0]) - 1 if high[1] else math.floor(high[0])
        first, last = (int(end) for end in _fill_range(lo, hi, DEFAULT_INT_SPAN))
        step = schema.get("multipleOf")
        if step is not None:
            return round(self._multiple(first, last, step, path))
        if last < first:
            raise ScriptedSchemaError(f"{path}: empty integer range [{first}, {last}]")
        return self.rng.randint(first, last)

    def _multiple(self, lo: float, hi: float, step: float, path: str) -> float:
        """A multiple of ``step`` within [lo, hi]."""
        if step <= 0:
            raise ScriptedSchemaError(f"{path}: multipleOf must be positive, got {step}")
        first, last = math.ceil(lo / step), math.floor(hi / step)
        if last < first:
            raise ScriptedSchemaError(f"{path}: no multiple of {step} in [{lo}, {hi}]")
        return self.rng.randint(first, last) * step

    def _number(self, schema: dict[str, Any], depth: int, path: str) -> float:
        low, high = self._bounds(schema)
        lo, hi = _fill_range(
            None if low is None else float(low[0]),
            None if high is None else float(high[0]),
            DEFAULT_NUMBER_SPAN,
        )
        if hi < lo:
            raise ScriptedSchemaError(f"{path}: empty number range [{lo}, {hi}]")

        def inside(candidate: float) -> bool:
            above = candidate > lo if low is not None and low[1] else candidate >= lo
            below = candidate < hi if high is not None and high[1] else candidate <= hi
            return above and below

        step = schema.get("multipleOf")
        if step is not None:
            value = self._multiple(lo, hi, float(step), path)
            if not inside(value):
                value = self._multiple(lo + step, hi - step, float(step), path)
            return value
        value = min(max(round(self.rng.uniform(lo, hi), NUMBER_DECIMALS), lo), hi)
        if not inside(value):
            value = (lo + hi) / 2
        if not inside(value):
            raise ScriptedSchemaError(f"{path}: empty number range ({lo}, {hi})")
        return value

    @staticmethod
    def _bounds(
        schema: dict[str, Any],
    ) -> tuple[tuple[float, bool] | None, tuple[float, bool] | None]:
        """(lower, exclusive?) and (upper, exclusive?) bounds, the tighter one where both exist."""
        low: tuple[float, bool] | None = None
        high: tuple[float, bool] | None = None
        if "minimum" in schema:
            low = (schema["minimum"], False)
        if "exclusiveMinimum" in schema and (low is None or schema["exclusiveMinimum"] >= low[0]):
            low = (schema["exclusiveMinimum"], True)
        if "maximum" in schema:
            high = (schema["maximum"], False)
        if "exclusiveMaximum" in schema and (high is None or schema["exclusiveMaximum"] <= high[0]):
            high = (schema["exclusiveMaximum"], True)
        return low, high


def _fill_range(low: float | None, high: float | None, span: float) -> tuple[float, float]:
    """Both ends of a range, filling a missing side ``span`` away from the other (or 0)."""
    if low is None:
        return (0, span) if high is None else (high - span, high)
    return (low, low + span) if high is None else (low, high)


def whitespace_tokens(text: str) -> int:
    """Token count used by the scripted LLM: whitespace-separated words."""
    return len(text.split())


class ScriptedLLM:
    """Deterministic offline LLM that always answers schema-valid JSON."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.model = SCRIPTED_MODEL_NAME

    def __repr__(self) -> str:
        return f"ScriptedLLM(seed={self.seed})"

    def generate(self, request: LLMRequest) -> str:
        """The reply text for ``request`` (pure function of seed and request)."""
        rng = random.Random(request_seed(self.seed, request))
        if request.choices is not None:
            return rng.choice(request.choices)
        sampler = SchemaSampler(request.response_schema or {}, rng)
        if request.response_schema is None:
            return sampler.phrase()
        return json.dumps(sampler.sample(), ensure_ascii=False)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer ``request`` at once; usage counts whitespace-separated words."""
        text = self.generate(request)
        prompt = sum(whitespace_tokens(message.content) for message in request.messages)
        return LLMResponse(
            text=text,
            usage=TokenUsage(prompt_tokens=prompt, completion_tokens=whitespace_tokens(text)),
            latency_s=0.0,
            model=request.model or self.model,
            attempts=1,
        )

    async def aclose(self) -> None:
        """Nothing to release."""
