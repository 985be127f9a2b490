"""Reading a run directory: its config, manifest, episode and step lines, and a whole run
(:class:`RunData`) as the evaluation, the report and the comparison see it.

A run directory is all they need: the dataset comes from the data config of the run's own
``config.toml``. Bad JSONL lines follow the one rule of :mod:`billp.records.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from billp.config import (
    UNSET_KEY,
    ConfigError,
    DataConfig,
    RunConfig,
    config_to_toml_dict,
    load_config,
)
from billp.records.files import (
    CONFIG_FILE,
    EPISODES_FILE,
    MANIFEST_FILE,
    STEPS_FILE,
    RunFileError,
)
from billp.records.jsonl import read_jsonl, validate_line
from billp.records.models import EpisodeRecord, EpisodeTraceRecord, StepRecord, StepsLine

if TYPE_CHECKING:
    from billp.data import Dataset

PHASES: tuple[str, ...] = ("train", "test")

RUN_SPECIFIC_FIELDS: frozenset[str] = frozenset(
    {"seed", "test_user_offset", "output_dir", "progress", "memory.dir", "llm.cache_dir"}
)
"""Config fields that differ between seeds of one experiment and do not define it.
(``test_user_offset`` is one: eval/paper_table.py gives each seed its own test users.
``concurrency`` is not: it changes which memories an LLM episode sees.)"""


class RunDirError(RunFileError):
    """A run directory is missing a file or holds an unreadable one (the message names it)."""


# ------------------------------------------------------------------ the files
def load_run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run directory was started with."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {CONFIG_FILE} is missing")
    return load_config(path)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """``manifest.json`` ({} when there is none); a damaged one is a :class:`RunFileError`."""
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise TypeError(f"a JSON {type(manifest).__name__}, not an object")
    except (ValueError, TypeError) as exc:
        raise RunFileError(
            f"{path} is damaged ({type(exc).__name__}: {exc}); it must be the JSON object "
            "billp wrote"
        ) from None
    return manifest


def manifest_memory_dir(run_dir: Path) -> Path:
    """The memory folder the run's manifest names."""
    path = run_dir / MANIFEST_FILE
    memory_dir = read_manifest(run_dir).get("memory_dir")
    if not isinstance(memory_dir, str):
        raise RunFileError(
            f"{path} is damaged (no 'memory_dir' entry); it must be the JSON object billp "
            "wrote, with a 'memory_dir' entry"
        )
    return Path(memory_dir)


def read_episodes(run_dir: Path) -> list[EpisodeRecord]:
    """The episode records of ``episodes.jsonl``; a record that is not an
    :class:`EpisodeRecord` is a :class:`RunFileError`."""
    path = run_dir / EPISODES_FILE
    return [
        validate_line(path, EpisodeRecord, line, number)
        for number, line in enumerate(read_jsonl(path), 1)
    ]


def read_steps(run_dir: Path) -> list[StepsLine]:
    """The lines of ``steps.jsonl`` ([] when there is none): a :class:`StepRecord` per step,
    an :class:`EpisodeTraceRecord` for a line without a step number; a line that is not one
    is a :class:`RunFileError`."""
    path = run_dir / STEPS_FILE
    return [
        validate_line(
            path, EpisodeTraceRecord if line.get("step") is None else StepRecord, line, number
        )
        for number, line in enumerate(read_jsonl(path), 1)
    ]


# ------------------------------------------------------------------ a whole run
def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict (lists and scalars are leaves)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


@dataclass
class RunData:
    """One run directory, read."""

    path: Path
    config: RunConfig
    manifest: dict[str, Any]
    episodes: list[EpisodeRecord]
    _steps: list[StepsLine] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def env(self) -> str:
        return self.config.env.name

    @property
    def agent(self) -> str:
        return self.config.agent.name

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def cap(self) -> int:
        return self.config.env.max_steps

    def phase_episodes(self, phase: str) -> list[EpisodeRecord]:
        """Episodes of ``phase`` ('train', 'test' or 'all'), in plan order."""
        chosen = self.episodes if phase == "all" else [e for e in self.episodes if e.phase == phase]
        return sorted(
            chosen, key=lambda e: (PHASES.index(e.phase) if e.phase in PHASES else 9, e.index)
        )

    def config_dict(self) -> dict[str, Any]:
        """The config as TOML values; ``None`` fields are left out (not listed under _unset)."""
        data = config_to_toml_dict(self.config)
        data.pop(UNSET_KEY, None)
        return data

    def templates(self) -> dict[str, str]:
        """Template name -> hash, from the manifest."""
        return dict(self.manifest.get("templates", {}))

    def template_sources(self) -> dict[str, str]:
        return dict(self.manifest.get("template_sources", {}))

    def experiment_key(self) -> str:
        """Hash of what defines the experiment: config without run-specific fields, templates."""
        flat = {
            k: v for k, v in flatten(self.config_dict()).items() if k not in RUN_SPECIFIC_FIELDS
        }
        blob = json.dumps({"config": flat, "templates": self.templates()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def steps(self) -> list[StepsLine]:
        """Lines of ``steps.jsonl`` (read on first use)."""
        if self._steps is None:
            self._steps = read_steps(self.path)
        return self._steps

    def dataset(self) -> Dataset:
        """The run's dataset (for starting histories, titles and the catalogue)."""
        return load_dataset_cached(self.config.data.model_dump_json())


@cache
def load_dataset_cached(data_config_json: str) -> Dataset:
    """The dataset a data config names, loaded once per process."""
    from billp.data import load_dataset

    return load_dataset(DataConfig.model_validate_json(data_config_json))


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / EPISODES_FILE).is_file()


def expand_run_dirs(paths: Iterable[Path]) -> list[Path]:
    """Run directories named by ``paths``: a run directory itself, or a folder of them.

    Raises:
        RunDirError: a path is neither (the message names it).
    """
    found: list[Path] = []
    for path in paths:
        if is_run_dir(path):
            found.append(path)
            continue
        children = sorted(p for p in path.iterdir() if is_run_dir(p)) if path.is_dir() else []
        if not children:
            raise RunDirError(
                f"{path} is not a run directory (no {CONFIG_FILE} and {EPISODES_FILE}) "
                "and holds none"
            )
        found.extend(children)
    return found


def load_run(path: Path) -> RunData:
    """Read a run directory.

    Raises:
        RunDirError: a file is missing, or the config is invalid; the message names it.
        RunFileError: the manifest or an episode line is damaged.
    """
    if not (path / CONFIG_FILE).is_file():
        raise RunDirError(f"{path} is not a run directory: {CONFIG_FILE} is missing")
    if not (path / EPISODES_FILE).is_file():
        raise RunDirError(f"{path}: {EPISODES_FILE} is missing (did the run start?)")
    try:
        config = load_run_config(path)
    except ConfigError as exc:
        raise RunDirError(f"{path / CONFIG_FILE}: {exc}") from None
    return RunData(path, config, read_manifest(path), read_episodes(path))


def load_runs(paths: Sequence[Path]) -> list[RunData]:
    """Read every run directory ``paths`` name (see :func:`expand_run_dirs`)."""
    return [load_run(p) for p in expand_run_dirs(paths)]
