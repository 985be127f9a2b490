"""The run record: the one rule for bad JSONL lines, the lines as written, and recovery."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import get_args

import pytest

from billp.agents.billp_traces import (
    BillpStepTrace,
    CriticStep,
    MemoryHits,
    ReflectionTrace,
    ValueEstimate,
)
from billp.agents.loop_trace import HintShown, LoopTrace, RetrievedReflection
from billp.agents.messages import ActorChoice, Plan
from billp.agents.roles import CallTrace
from billp.policy import RankedTrace, ScoredChoice, TraceRecord
from billp.records import (
    EpisodeRecord,
    EpisodeTraceRecord,
    RunFileError,
    RunWriter,
    StepRecord,
    StepTrace,
    read_episodes,
    read_jsonl,
    read_steps,
    recover,
)

REPO = Path(__file__).resolve().parents[1]


def _episode(key: str) -> EpisodeRecord:
    return EpisodeRecord(
        key=key, phase="train", index=0, user_id=1, seed=0, items=[4, 2], rewards=[1.5, 0.25],
        steps=2, length=1, total_reward=1.5, terminated=True, truncated=False,
        quit_reason="repeat", fallbacks=0,
    )  # fmt: skip


def _step(key: str, number: int) -> StepRecord:
    return StepRecord(
        episode=key, phase="train", user_id=1, step=number, action=4, reward=1.5,
        terminated=False, truncated=False, quit_reason=None, similar_to=None, env_step_s=0.0,
        trace=BillpStepTrace(
            plan=Plan(thought="a\u2028b"), genre_hints=[], shortlist=[4],
            shortlist_sources={"4": "plan"}, choice=ActorChoice(item_id=4), loop=LoopTrace(),
        ),
    )  # fmt: skip


def _call(role: str) -> CallTrace:
    return CallTrace(
        role=role, template_hash="t", prompt_hash="p", raw='{"value": 3}', parsed={"value": 3.0},
        stage="valid", error=None, prompt_tokens=5, completion_tokens=1, cached_tokens=0,
        latency_s=0.25, calls=1,
    )  # fmt: skip


def _line(number: int, trace: StepTrace) -> StepRecord:
    return StepRecord(
        episode="train-0000", phase="train", user_id=1, step=number, action=4, reward=3.5,
        terminated=False, truncated=False, quit_reason=None, similar_to=None, env_step_s=0.001,
        trace=trace,
    )  # fmt: skip


def test_step_lines_round_trip_as_the_same_models_and_bytes(tmp_path: Path) -> None:
    """Every trace a policy records reads back as the model that wrote it, and writing that
    again gives the same bytes."""
    billp = BillpStepTrace(
        calls=[_call("critic"), _call("planner"), _call("actor"), _call("critic")],
        reflections=["Prefer Drama."],
        value=ValueEstimate(source="memory", similarity=0.9, value=3.0),
        plan=Plan(anchor="Heat", genres=["Drama"], thought="slow \u2028 burn"),
        memory_hits=MemoryHits(encouraged=[4], discouraged=[5]),
        genre_hints=["Crime"],
        shortlist=[4, 6],
        shortlist_sources={"4": "hint", "6": "plan"},
        choice=ActorChoice(item_id=4, reason="a hint"),
        loop=LoopTrace(
            reflections=[RetrievedReflection(episode="train-0001", similarity=None)],
            hints=[HintShown(item_id=4, sign=1, weight=0.5)],
            followed_hint=1,
            value_source="memory",
            value_similarity=0.9,
            next_value_source="critic",
            v=3.0,
            v_next=2.0,
            reward_booked=3.5,
            td_target=2.75,
            advantage=-0.25,
        ),
        critic=CriticStep(
            v=3.0,
            v_next=2.0,
            next=ValueEstimate(
                source="critic", value=2.0, call=_call("critic"), distribution=[0.5, 0.5]
            ),
            td_target=2.75,
            advantage=-0.25,
        ),
    )
    lines = [
        _line(1, billp),
        _line(2, BillpStepTrace(genre_hints=[], shortlist=[4], shortlist_sources={"4": "plan"},
                                choice=ActorChoice(item_id=4), loop=LoopTrace())),
        _line(3, RankedTrace(choice=ScoredChoice(item_id=4, predicted_reward=4.5), shortlist=[4],
                             excluded_by_quit_rule=2, no_safe_item=False)),
        _line(4, RankedTrace(choice=ScoredChoice(item_id=4))),
        EpisodeTraceRecord(
            episode="train-0000", phase="train",
            trace=ReflectionTrace(outcome="quit", reflection="vary", calls=[_call("reflector")]),
        ),
    ]  # fmt: skip
    with RunWriter(tmp_path) as writer:
        writer.write_steps(lines)
    read = read_steps(tmp_path)
    assert read == lines
    assert [type(line.trace) for line in read] == [type(line.trace) for line in lines]
    again = tmp_path / "again"
    again.mkdir()
    with RunWriter(again) as writer:
        writer.write_steps(read)
    assert (again / "steps.jsonl").read_bytes() == (tmp_path / "steps.jsonl").read_bytes()


def _keyed(node: ast.AST) -> ast.expr | None:
    """What ``node`` reads by key: ``x`` of ``x[...]`` or ``x.get(...)``."""
    if isinstance(node, ast.Subscript):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.value if node.func.attr == "get" else None
    return None


def _is_trace(node: ast.expr) -> bool:
    """Whether ``node`` is a trace: a name ending in ``trace``, or ``x["trace"]``."""
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr).endswith("trace")
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "trace"
    if isinstance(node, ast.Call) and _keyed(node) is not None and node.args:
        return isinstance(node.args[0], ast.Constant) and node.args[0].value == "trace"
    return False


def test_a_trace_is_a_model_and_readers_use_its_attributes() -> None:
    """A line's trace is a trace model, never a dict; no code reads one by key."""
    for model in (StepRecord, EpisodeTraceRecord):
        annotation = model.model_fields["trace"].annotation
        kinds = get_args(annotation) or (annotation,)
        assert all(issubclass(kind, TraceRecord) for kind in kinds), model
    as_json = {"choice": {"item_id": 4}, "shortlist": [4]}
    assert isinstance(_line(1, as_json).trace, RankedTrace)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trace"):
        _line(1, {"choice": {"item_id": 4}, "plan": "free text"})  # type: ignore[arg-type]
    keyed = []
    for path in sorted([*(REPO / "billp").rglob("*.py"), *(REPO / "eval").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if _keyed(node) is not None and _is_trace(_keyed(node)):
                keyed.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not keyed, f"a trace read by key: {keyed}"


def test_lines_keep_the_written_key_order() -> None:
    assert list(_step("e", 1).line()) == [
        "episode", "phase", "user_id", "step", "action", "reward", "terminated", "truncated",
        "quit_reason", "similar_to", "env_step_s", "trace",
    ]  # fmt: skip
    reflection = ReflectionTrace(outcome="quit", reflection="vary", calls=[])
    trace = EpisodeTraceRecord(episode="e", phase="test", trace=reflection).line()
    assert json.dumps(trace) == '{"episode": "e", "phase": "test", "step": null, "trace": ' + (
        '{"outcome": "quit", "reflection": "vary", "calls": []}}'
    )
    assert list(_episode("e").line())[:3] == ["key", "phase", "index"]


def test_a_torn_tail_is_skipped_with_a_warning_and_left_on_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "episodes.jsonl"
    text = '{"a": 1}\n{"a": 2}'  # a whole object, but without its newline: not committed
    path.write_text(text)
    with caplog.at_level(logging.WARNING):
        assert read_jsonl(path) == [{"a": 1}]
    assert "torn last line" in caplog.text
    assert path.read_text() == text
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(RunFileError, match=r"episodes\.jsonl line 2"):
        read_jsonl(path)


def test_written_records_read_back_and_recovery_drops_unfinished_steps(tmp_path: Path) -> None:
    steps = [_step("train-0000", 1), _step("train-0000", 2), _step("train-0001", 1)]
    with RunWriter(tmp_path) as writer:
        writer.write_steps(steps[:2])
        writer.write_episode(_episode("train-0000"))
        writer.write_steps(steps[2:])  # killed before its episode line
    assert read_steps(tmp_path) == steps
    assert read_episodes(tmp_path) == [_episode("train-0000")]
    assert recover(tmp_path, {"train-0000", "train-0001"}) == [_episode("train-0000")]
    assert {s.episode for s in read_steps(tmp_path)} == {"train-0000"}


def test_a_bad_episode_record_names_the_file_record_and_field(tmp_path: Path) -> None:
    line = _episode("x").line()
    del line["items"]
    (tmp_path / "episodes.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(RunFileError, match=r"episodes\.jsonl: record 1 .*field items"):
        read_episodes(tmp_path)
