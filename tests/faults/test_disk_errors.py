"""ENOSPC and EIO on every kind of durable write: a clear error naming the file, then a resume
(space back) finishes the run with nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import (
    FIGURES,
    ForkServer,
    Reference,
    memory_state,
    run_args,
    run_dirs,
)
from tests.faults.test_kill_resume import finished_run_dir

EXIT_IO_FAILURE = 4
MESSAGES = {"ENOSPC": "No space left on device", "EIO": "Input/output error"}

# (file, stage, nth match): each kind of write billp makes during a run.
WRITES = [
    ("config.toml", "atomic.before", 1),
    ("manifest.json", "atomic.mid", 1),
    ("steps.jsonl", "append.mid", 3),
    ("episodes.jsonl", "append.mid", 2),
    ("meta.json", "atomic.before", 1),
    ("index.faiss", "atomic.mid", 2),
    ("payloads.jsonl", "atomic.rename", 2),
    ("summary.json", "atomic.before", 1),
]


@pytest.mark.parametrize("errno_name", sorted(MESSAGES))
@pytest.mark.parametrize(("target", "stage", "nth"), WRITES, ids=[w[0] for w in WRITES])
def test_disk_error_names_the_file_and_resume_loses_nothing(
    forkserver: ForkServer,
    reference: Reference,
    tmp_path: Path,
    errno_name: str,
    target: str,
    stage: str,
    nth: int,
) -> None:
    spec = {"errno": errno_name, "match": target, "stage": stage, "nth": nth}
    result = forkserver.run(run_args(tmp_path), spec)
    FIGURES.faults_injected += 1
    assert result.rc == EXIT_IO_FAILURE, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert target in result.stderr and MESSAGES[errno_name] in result.stderr, result.stderr
    if target == "config.toml":  # the half-made run directory is removed: start again
        assert not run_dirs(tmp_path)
    run_dir = finished_run_dir(forkserver, tmp_path)
    assert (run_dir / "episodes.jsonl").read_bytes() == reference.episodes
    assert memory_state(run_dir) == reference.memories
    FIGURES.faults_recovered += 1
