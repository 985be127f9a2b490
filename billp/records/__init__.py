"""The run record: one package owns the run directory (its files, the episode and step
lines as Pydantic models, the one rule for reading JSONL, the manifest and the recovery of
``--resume``); the runner writes through it and evaluation reads through it."""

from billp.records.files import RunFileError
from billp.records.jsonl import read_jsonl, read_jsonl_repairing
from billp.records.models import (
    EpisodeRecord,
    EpisodeTraceRecord,
    Phase,
    StepRecord,
    StepsLine,
    StepTrace,
)
from billp.records.rundir import (
    CONFIG_FILE,
    EPISODES_FILE,
    MANIFEST_FILE,
    SUMMARY_FILE,
    RunWriter,
    build_manifest,
    create,
    load_run_config,
    manifest_memory_dir,
    read_episodes,
    read_manifest,
    read_steps,
    recover,
    write_manifest,
)

__all__ = [
    "CONFIG_FILE",
    "EPISODES_FILE",
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
    "read_manifest",
    "read_steps",
    "recover",
    "write_manifest",
]
