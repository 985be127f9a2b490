"""Run files: torn tails are truncated, the run directory is locked and created exclusively."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from billp.records import read_jsonl_repairing
from billp.records.files import (
    JsonlAppender,
    RunDirInUseError,
    RunFileError,
    create_run_dir,
    locked_run_dir,
)


def test_torn_last_line_is_truncated_and_the_next_append_is_clean(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "episodes.jsonl"
    whole = json.dumps({"key": "a"}) + "\n"
    path.write_text(whole + json.dumps({"key": "b", "items": [1, 2]})[:12])
    with caplog.at_level(logging.WARNING):
        assert read_jsonl_repairing(path) == [{"key": "a"}]
    assert "torn last line" in caplog.text
    assert path.read_text() == whole
    out = JsonlAppender(path)
    out.write({"key": "b"})
    out.close()
    assert path.read_text() == whole + '{"key": "b"}\n'


def test_a_damaged_line_before_the_last_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(RunFileError, match=r"steps\.jsonl line 2"):
        read_jsonl_repairing(path)


def test_a_second_holder_of_the_run_lock_is_refused(tmp_path: Path) -> None:
    with locked_run_dir(tmp_path):
        with pytest.raises(RunDirInUseError, match="in use by another billp process"):
            with locked_run_dir(tmp_path):
                pass
    with locked_run_dir(tmp_path):  # released
        pass


def test_run_directories_never_collide(tmp_path: Path) -> None:
    first = create_run_dir(tmp_path, "run", "seed = 0\n")
    second = create_run_dir(tmp_path, "run", "seed = 1\n")
    assert first != second and second.name == "run-2"
    assert (second / "config.toml").read_text() == "seed = 1\n"
