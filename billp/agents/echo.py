"""Is a model's free text a real answer, or an echo of its prompt?

Small models often copy the template's own words (an instruction, a format hint, the
example reply) or loop on a phrase ("The plan for step 5 is the plan for step 5 ...").
Such text carries no information, and stored as a lesson it poisons every later prompt
that retrieves it. The checks here are shared by the agent (an echo is an invalid reply,
so it is re-asked and then replaced) and by ``eval/echo_rate.py`` (the share of echoes in
a run directory's replies).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

ECHO_MIN_WORDS = 5
"""A run of this many consecutive words shared with the template's static text is an
echo. Five words is where ordinary prose stops matching by chance: on the shipped
templates no hand-written plan or lesson of the test suite shares a 5-word run with its
template, while copies of the example reply or of an instruction do."""
REPEAT_NGRAM = 3
"""Word n-gram length checked for degenerate repetition."""
REPEAT_COUNT = 3
"""An n-gram that occurs this often in one short reply is a loop, not prose."""
MIN_WORDS = 3
"""Fewer words than this is no sentence."""

_WORD = re.compile(r"[a-z0-9']+")
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_STEP_LOOP = re.compile(r"\b(plan|step) for step \d+", re.IGNORECASE)

EchoKind = Literal["placeholder", "repetition", "empty"]


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text``."""
    return _WORD.findall(text.lower())


def static_text(template_source: str) -> str:
    """The words a template always sends: its source without Jinja expressions and tags."""
    return _JINJA.sub(" ", template_source)


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


class EchoDetector:
    """Flags replies that copy a template's static text or repeat themselves."""

    def __init__(self, template_sources: list[str], min_words: int = ECHO_MIN_WORDS) -> None:
        self.min_words = min_words
        self._template_ngrams: set[tuple[str, ...]] = set()
        for source in template_sources:
            self._template_ngrams |= ngrams(words(static_text(source)), min_words)

    def kind(self, text: str) -> EchoKind | None:
        """Why ``text`` is not a real answer, or None when it is one."""
        tokens = words(text)
        if len(tokens) < MIN_WORDS:
            return "empty"
        if self._template_ngrams & ngrams(tokens, self.min_words):
            return "placeholder"
        if _STEP_LOOP.search(text):
            return "repetition"
        counts = Counter(tuple(tokens[i : i + REPEAT_NGRAM]) for i in range(len(tokens) - 2))
        if counts and max(counts.values()) >= REPEAT_COUNT:
            return "repetition"
        return None


REPAIRED_TEXT_MAX_CHARS = 200
"""Longest free text a repair keeps from an unparsable reply (plans and lessons)."""


def reject_echo(detector: EchoDetector, text: str, what: str) -> None:
    """Raise (so the reply is re-asked) when ``text`` echoes its template or loops."""
    kind = detector.kind(text)
    if kind is not None:
        raise ValueError(f"{what} ({kind}): write your own sentence")


def own_text(detector: EchoDetector, raw: str) -> str | None:
    """An unparsable reply's text, kept as free text unless it is empty or an echo."""
    text = raw.strip()[:REPAIRED_TEXT_MAX_CHARS]
    return text if text and detector.kind(text) is None else None
