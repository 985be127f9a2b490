"""The run record: the one rule for bad JSONL lines, the lines as written, and recovery."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from billp.records import (
    EpisodeRecord,
    EpisodeTraceRecord,
    RunFileError,
    RunWriter,
    StepRecord,
    read_episodes,
    read_jsonl,
    read_steps,
    recover,
)


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
        trace={"plan": "a\u2028b", "calls": []},
    )  # fmt: skip


def test_lines_keep_the_written_key_order() -> None:
    assert list(_step("e", 1).line()) == [
        "episode", "phase", "user_id", "step", "action", "reward", "terminated", "truncated",
        "quit_reason", "similar_to", "env_step_s", "trace",
    ]  # fmt: skip
    trace = EpisodeTraceRecord(episode="e", phase="test", trace={"calls": []}).line()
    assert json.dumps(trace) == '{"episode": "e", "phase": "test", "step": null, "trace": ' + (
        '{"calls": []}}'
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
    with RunWriter(tmp_path) as writer:
        writer.write_steps([_step("train-0000", 1), _step("train-0000", 2)])
        writer.write_episode(_episode("train-0000"))
        writer.write_steps([_step("train-0001", 1)])  # killed before its episode line
    assert [s["trace"]["plan"] for s in read_steps(tmp_path)] == ["a\u2028b"] * 3
    assert read_episodes(tmp_path) == [_episode("train-0000")]
    assert recover(tmp_path, {"train-0000", "train-0001"}) == [_episode("train-0000")]
    assert {s["episode"] for s in read_steps(tmp_path)} == {"train-0000"}


def test_a_bad_episode_record_names_the_file_record_and_field(tmp_path: Path) -> None:
    line = _episode("x").line()
    del line["items"]
    (tmp_path / "episodes.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(RunFileError, match=r"episodes\.jsonl: record 1 .*field items"):
        read_episodes(tmp_path)
