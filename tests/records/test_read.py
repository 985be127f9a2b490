"""Reading a whole run directory back: what is missing is named, folders of runs expand, and
runs that differ only in their seed share an experiment."""

from __future__ import annotations

from pathlib import Path

import pytest

from billp.config import RunConfig
from billp.records import RunWriter, create
from billp.records.read import RunDirError, expand_run_dirs, load_run, load_runs
from tests.records.test_records import _episode


def _run(parent: Path, seed: int) -> Path:
    run_dir = create(RunConfig(seed=seed, output_dir=parent), f"run{seed}")
    with RunWriter(run_dir) as writer:
        writer.write_episode(_episode("train-0000"))
    return run_dir


def test_a_folder_of_runs_reads_as_its_runs_and_seeds_share_an_experiment(tmp_path: Path) -> None:
    first, second = _run(tmp_path, 0), _run(tmp_path, 1)
    assert expand_run_dirs([tmp_path]) == [first, second]
    runs = load_runs([tmp_path])
    assert [r.seed for r in runs] == [0, 1]
    assert runs[0].episodes == [_episode("train-0000")]
    assert runs[0].phase_episodes("train") == runs[0].episodes
    assert runs[0].phase_episodes("test") == []
    assert runs[0].manifest == {}
    assert runs[0].experiment_key() == runs[1].experiment_key()


def test_what_is_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"config\.toml is missing"):
        load_run(tmp_path)
    with pytest.raises(RunDirError, match="holds none"):
        expand_run_dirs([tmp_path])
    run_dir = create(RunConfig(output_dir=tmp_path), "started")
    with pytest.raises(RunDirError, match=r"episodes\.jsonl is missing"):
        load_run(run_dir)
    (run_dir / "episodes.jsonl").write_text("")
    (run_dir / "config.toml").write_text("seed = 'x'\n")
    with pytest.raises(RunDirError, match=r"(?s)config\.toml: .*seed"):
        load_run(run_dir)
