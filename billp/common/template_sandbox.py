"""A Jinja sandbox with resource limits, for prompt templates from user folders.

Jinja's ``SandboxedEnvironment`` blocks unsafe attribute access but not resource abuse. This
environment also bounds, per render:

* loop work: ``range`` hands out at most :data:`MAX_RANGE_ITEMS` numbers in total per render;
* sequence growth: ``"x" * n`` / ``[..] * n`` / ``**`` may not build huge values;
* output: a rendered prompt longer than :data:`MAX_OUTPUT_CHARS` stops the render;
* recursion: a macro calling itself without end is stopped.

Each violation raises :class:`TemplateLimitError` (a ``jinja2.TemplateError``), which the
prompt library turns into an error naming the template.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

MAX_RANGE_ITEMS = 100_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_SEQUENCE = 100_000
MAX_POWER_BITS = 4096


class TemplateLimitError(jinja2.TemplateError):
    """A template exceeded a sandbox resource limit."""


class _Budget:
    def __init__(self) -> None:
        self.items = 0


class LimitedSandbox(SandboxedEnvironment):
    """``SandboxedEnvironment`` plus bounds on loops, sizes, recursion and output."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._budget = _Budget()
        self.globals["range"] = self._range

    def _range(self, *args: int) -> Iterator[int]:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE_ITEMS:
            raise TemplateLimitError(
                f"range of {len(numbers)} items; the template sandbox allows {MAX_RANGE_ITEMS}"
            )
        return self._counted(numbers)

    def _counted(self, numbers: range) -> Iterator[int]:
        for number in numbers:
            self._budget.items += 1
            if self._budget.items > MAX_RANGE_ITEMS:
                raise TemplateLimitError(
                    f"loops ran more than {MAX_RANGE_ITEMS} range steps in one render"
                )
            yield number

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple, bytes)) and isinstance(times, int):
                    if len(seq) * times > MAX_SEQUENCE:
                        raise TemplateLimitError(
                            f"repeating a sequence of {len(seq)} items {times} times; "
                            f"the template sandbox allows {MAX_SEQUENCE} items"
                        )
            return operator.mul(left, right)
        if operator_name == "**":
            if isinstance(left, int) and isinstance(right, int):
                if (
                    right > 0
                    and abs(left) > 1
                    and right * max(abs(left).bit_length(), 1) > (MAX_POWER_BITS)
                ):
                    raise TemplateLimitError(
                        f"{left} ** {right} is too large for the template sandbox"
                    )
            return operator.pow(left, right)
        return super().call_binop(context, operator_name, left, right)

    def render_limited(self, template: jinja2.Template, variables: dict[str, Any]) -> str:
        """Render ``template`` within the limits (output, loop steps, recursion)."""
        self._budget = _Budget()
        parts: list[str] = []
        size = 0
        try:
            for chunk in template.generate(**variables):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateLimitError(f"output longer than {MAX_OUTPUT_CHARS} characters")
                parts.append(chunk)
        except RecursionError:
            raise TemplateLimitError("recursion too deep (a macro that calls itself?)") from None
        except (OverflowError, MemoryError) as exc:
            raise TemplateLimitError(f"value too large ({type(exc).__name__}: {exc})") from None
        return "".join(parts)
