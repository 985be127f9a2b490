"""Every role template renders against its input model, strictly and sandboxed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from billp.agents.messages import (
    ActorInput,
    CandidateView,
    CriticInput,
    PlannerInput,
    ReflectorInput,
    StepView,
    UserRules,
)
from billp.agents.prompts import ROLE_TEMPLATES, PromptError, PromptLibrary, shipped_prompts_dir

STEP = StepView(step=1, title="Heat (1995)", genres=["Action", "Crime"], reward=4.2, thought="go")


def role_inputs(variant: int) -> dict[str, object]:
    history = [f"Movie {variant}-{i} (1990)" for i in range(3)]
    return {
        "planner": PlannerInput(
            history=history,
            reflections=[f"lesson {variant}"] if variant else [],
            scratchpad=[STEP] if variant else [],
            genres=["Action", "Comedy", "Drama"],
            step=variant + 1,
        ),
        "actor": ActorInput(
            plan=f"plan {variant}" if variant else None,
            history=history,
            candidates=[CandidateView(item_id=7 + variant, title="Heat (1995)", genres=["Crime"])],
            encouraged=["Up (2009)"] if variant else [],
            discouraged=[],
            genre_hints=["Comedy"],
        ),
        "critic": CriticInput(
            history=history,
            session=[STEP] if variant else [],
            remembered_value=2.0 if variant else None,
        ),
        "reflector": ReflectorInput(
            history=history, steps=[STEP], outcome="the user left", length=variant, total_reward=4.2
        ),
    }


@pytest.mark.parametrize("role", sorted(ROLE_TEMPLATES))
def test_every_template_renders_against_its_input_model(role: str) -> None:
    library = PromptLibrary()
    for variant in (0, 1):
        rendered = library.render(role, role_inputs(variant)[role])  # type: ignore[arg-type]
        assert rendered.text
        assert "{{" not in rendered.text and "{%" not in rendered.text
        assert len(rendered.template_hash) == 16


@pytest.mark.parametrize("role", sorted(ROLE_TEMPLATES))
def test_templates_put_static_text_first(role: str) -> None:
    """Two different inputs share a long common prefix: good for vLLM prefix caching."""
    library = PromptLibrary()
    first = library.render(role, role_inputs(0)[role]).text  # type: ignore[arg-type]
    second = library.render(role, role_inputs(1)[role]).text  # type: ignore[arg-type]
    common = len(os.path.commonprefix([first, second]))  # noqa: RUF071 (characters wanted)
    assert common >= 150, f"{role}: only {common} static characters before the first variable"


def test_undefined_variable_is_an_error_naming_the_template(tmp_path: Path) -> None:
    (tmp_path / "critic.j2").write_text("Value of {{ stat }}")
    library = PromptLibrary(tmp_path)
    with pytest.raises(PromptError, match=r"critic\.j2.*undefined"):
        library.render("critic", CriticInput(history=["a"], session=[]))


def test_user_folder_overrides_one_template(tmp_path: Path) -> None:
    (tmp_path / "critic.j2").write_text("Custom critic: {{ history | join(',') }}")
    library = PromptLibrary(tmp_path)
    rendered = library.render("critic", CriticInput(history=["a", "b"], session=[]))
    assert rendered.text == "Custom critic: a,b"
    planner = library.render("planner", role_inputs(0)["planner"])  # type: ignore[arg-type]
    assert planner.text.startswith("You are the Planner")


def test_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    (tmp_path / "critic.j2").write_text("{{ history.__class__.__mro__[1].__subclasses__() }}")
    library = PromptLibrary(tmp_path)
    with pytest.raises(
        PromptError,
        match=r"critic\.j2 failed to render: access to attribute '__class__' of 'list' "
        r"object is unsafe",
    ):
        library.render("critic", CriticInput(history=["a"], session=[]))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ range(10**8) | list | length }}", "range of 100000000 items"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion too deep"),
        ("{{ 'x' * 10**9 }}", "repeating a sequence"),
        (
            "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
            "range steps in one render",
        ),
        ("{% for i in range(50000) %}{{ 'x' * 90000 }}{% endfor %}", "output longer than"),
    ],
    ids=["huge-range", "recursion", "huge-repeat", "nested-loops", "giant-output"],
)
def test_sandbox_stops_resource_abuse_naming_the_template(
    tmp_path: Path, source: str, message: str
) -> None:
    (tmp_path / "critic.j2").write_text(source)
    library = PromptLibrary(tmp_path)
    with pytest.raises(PromptError, match=rf"critic\.j2 failed to render: .*{message}"):
        library.render("critic", CriticInput(history=["a"], session=[]))


def test_syntax_error_and_missing_folder_are_clear(tmp_path: Path) -> None:
    (tmp_path / "actor.j2").write_text("{% for x in %}")
    with pytest.raises(PromptError, match=r"actor\.j2, line 1"):
        PromptLibrary(tmp_path)
    with pytest.raises(PromptError, match="not found"):
        PromptLibrary(tmp_path / "nope")


def test_shipped_templates_exist() -> None:
    for name in ROLE_TEMPLATES.values():
        assert (shipped_prompts_dir() / name).is_file()


@pytest.mark.parametrize("role", sorted(ROLE_TEMPLATES))
def test_uninformed_prompts_tell_no_quit_rule(role: str) -> None:
    """BiLLP's framing: an unsatisfied user may leave; no threshold, window or 'change
    genres'. The informed prompts state all three."""
    library = PromptLibrary()
    data = role_inputs(1)[role]
    uninformed = data.model_copy(  # type: ignore[attr-defined]
        update={"rules": UserRules(knowledge="uninformed")}
    )
    informed_text = library.render(role, data).text  # type: ignore[arg-type]
    text = library.render(role, uninformed).text
    assert "may leave" in text
    for told in (
        "rated below",
        "too similar",
        "change genres",
        "not recommended recently",
        "repeated",
        "last recommendations",
    ):
        assert told not in text
    assert "rated below" in informed_text or "below 2" in informed_text
