"""Each command's root tree: ``python -m billp.simulate`` (:class:`RunConfig`) and the
``python -m billp.le`` commands, with the older sections each still reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from billp.config.agent import AgentConfig
from billp.config.data import DataConfig
from billp.config.env import EnvConfig
from billp.config.le import LEConfig, LEEvalConfig, LETrainConfig
from billp.config.legacy import LE_EVALUATE_COMMAND, LE_TRAIN_COMMAND, LegacySection
from billp.config.llm import LLMConfig
from billp.config.memory import MemoryConfig
from billp.config.section import Section

OTHER_COMMANDS_LE_SECTIONS: Mapping[str, LegacySection] = {
    "env.le.train": LegacySection(None, LE_TRAIN_COMMAND),
    "env.le.evaluate": LegacySection(None, LE_EVALUATE_COMMAND),
}
"""The LE training and evaluation sections that older trees kept under ``env.le``: commands
other than ``python -m billp.le`` ignore them with a warning (run directories written before
the split, which ``--resume`` reads, hold them)."""


class RunConfig(Section):
    """Everything ``python -m billp.simulate`` needs.

    A file that still sets ``[env.le.train]`` or ``[env.le.evaluate]`` (older layouts, run
    directories written before they moved to the ``python -m billp.le`` commands) is read with
    a warning that names the command using them; their values are ignored.
    """

    legacy_sections = OTHER_COMMANDS_LE_SECTIONS

    seed: int = Field(0, description="Master seed: episode seeds and LLM sampling derive from it.")
    train_users: int = Field(
        8, ge=0, description="Train-phase episodes (memory building), one per train user."
    )
    test_users: int = Field(8, ge=0, description="Test-phase episodes, one per test user.")
    test_user_offset: int = Field(
        0,
        ge=0,
        description="Test users of the split (sorted by id) skipped before the test phase: it "
        "plays test users offset .. offset+test_users-1. 0 (default): the first test users. "
        "eval/paper_table.py gives each seed its own block, so seeds play different users.",
    )
    concurrency: int = Field(8, ge=1, description="Episodes in flight at once.")
    wave_size: int = Field(
        4,
        ge=1,
        description="Episodes per wave (BiLLP's batches). Every episode of a wave reads the "
        "memories as they were at the wave's start; the wave's writes are committed at its "
        "end, in episode order. Smaller waves let learning transfer sooner (episode 5 sees the "
        "lessons of episodes 1-4); larger ones keep more episodes in flight. At most "
        "min(concurrency, wave_size) episodes run at once; a phase that commits no memory "
        "(a memoryless policy, or the test phase without memory.learn_during_test) is one "
        "wave of up to `concurrency`.",
    )
    scheduling: Literal["async", "lockstep"] = Field(
        "async",
        description="'async': a new episode starts whenever one ends; 'lockstep': BiLLP's "
        "batches of `concurrency` episodes, each waiting for its slowest episode (a baseline).",
    )
    output_dir: Path = Field(Path("runs"), description="Parent folder of run directories.")
    prompts_dir: Path | None = Field(
        None, description="Folder of Jinja templates overriding the shipped prompts/."
    )
    progress: bool = Field(True, description="Show a progress bar on stderr.")
    data: DataConfig = Field(default_factory=DataConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)

    @model_validator(mode="after")
    def _check_snapshots(self) -> RunConfig:
        for count in self.memory.snapshot_after:
            if count < 0 or count % self.wave_size or count > self.train_users:
                raise ValueError(
                    f"memory.snapshot_after: {count} is not a wave boundary of the train phase "
                    f"(a multiple of wave_size={self.wave_size}, at most train_users="
                    f"{self.train_users})"
                )
        return self


LE_COMMAND_LEGACY_SECTIONS: Mapping[str, LegacySection] = {
    "env.le.train": LegacySection("train", LE_TRAIN_COMMAND),
    "env.le.evaluate": LegacySection("evaluate", LE_EVALUATE_COMMAND),
}
"""Older LE files kept ``train`` and ``evaluate`` under ``env.le``; the LE commands read them
from there with a warning (a file that sets both places is refused)."""


class LETrainEnvConfig(Section):
    """The ``env`` settings ``python -m billp.le train`` reads: the LE's runtime settings.
    Other ``env`` keys of a file shared with ``python -m billp.simulate`` are ignored."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    le: LEConfig = Field(default_factory=LEConfig)


class LETrainCommandConfig(Section):
    """Everything ``python -m billp.le train`` reads; other sections of the file (those of
    ``simulate``, or ``evaluate``) are ignored, so one file may serve several commands."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)
    legacy_sections = LE_COMMAND_LEGACY_SECTIONS

    data: DataConfig = Field(default_factory=DataConfig)
    env: LETrainEnvConfig = Field(default_factory=LETrainEnvConfig)
    train: LETrainConfig = Field(default_factory=LETrainConfig)


class LEEvalCommandConfig(Section):
    """Everything ``python -m billp.le evaluate`` reads: the dataset, both worlds (the LE's
    checkpoint, the matrix model, the quit rule) and what to measure; other sections are
    ignored."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)
    legacy_sections = LE_COMMAND_LEGACY_SECTIONS

    data: DataConfig = Field(default_factory=DataConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    evaluate: LEEvalConfig = Field(default_factory=LEEvalConfig)
