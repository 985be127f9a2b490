"""The run record: one package owns the run directory: its files (:mod:`.files`), the episode
and step lines as Pydantic models (:mod:`.models`), the one rule for reading JSONL
(:mod:`.jsonl`), writing it and the recovery of ``--resume`` (:mod:`.write`), and reading it
back, a whole run included (:mod:`.read`). The runner writes through it; evaluation, the
report, the comparison and the benchmark scripts read through it."""

from billp.records.files import MANIFEST_FILE, SUMMARY_FILE, RunFileError
from billp.records.jsonl import read_jsonl, read_jsonl_repairing
from billp.records.models import (
    EpisodeRecord,
    EpisodeTraceRecord,
    Phase,
    StepRecord,
    StepsLine,
    StepTrace,
)
from billp.records.read import load_run_config, manifest_memory_dir, read_episodes, read_steps
from billp.records.write import RunWriter, build_manifest, create, recover, write_manifest

__all__ = [
    "MANIFEST_FILE",
    "SUMMARY_FILE",
    "EpisodeRecord",
    "EpisodeTraceRecord",
    "Phase",
    "RunFileError",
    "RunWriter",
    "StepRecord",
    "StepTrace",
    "StepsLine",
    "build_manifest",
    "create",
    "load_run_config",
    "manifest_memory_dir",
    "read_episodes",
    "read_jsonl",
    "read_jsonl_repairing",
    "read_steps",
    "recover",
    "write_manifest",
]
