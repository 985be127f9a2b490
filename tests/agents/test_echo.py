"""Echo and repetition checks on model free text."""

from __future__ import annotations

from billp.agents.echo import EchoDetector, static_text

TEMPLATE = (
    'Answer in JSON. "thought": one short sentence of your own saying why this plan suits '
    "this user now.\nThe user's history: {{ history | join('; ') }}."
    "{% if x %}Step {{ x }}{% endif %}"
)


def test_static_text_drops_jinja() -> None:
    assert "history" not in static_text("a {{ history }} b {% if x %}c{% endif %}")


def test_copies_of_the_template_are_placeholders() -> None:
    detector = EchoDetector([TEMPLATE])
    assert detector.kind("one short sentence of your own saying why") == "placeholder"
    assert detector.kind("Your plan: this plan suits this user now.") == "placeholder"


def test_loops_and_fragments_are_flagged() -> None:
    detector = EchoDetector([TEMPLATE])
    assert detector.kind("The plan for step 5 is the plan for step 5.") == "repetition"
    assert detector.kind("go on go on go on go on") == "repetition"
    assert detector.kind("Heat (1995)") == "empty"


def test_real_plans_pass() -> None:
    detector = EchoDetector([TEMPLATE])
    assert detector.kind("After two dramas, a light comedy like Toy Story should keep her.") is None
