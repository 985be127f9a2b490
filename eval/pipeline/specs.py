"""The target specs of the results pipeline: ``eval/targets.toml``, read into Pydantic models.

A *target* is one results file (or a family of them) and the commands that regenerate it; a
*part* is a named set of tracked files whose contents decide what agents and worlds do
(``prompts``, ``agents``, ``envs``, ...). A target names the parts its results depend on, so
``python eval/reproduce.py --status`` can say which parts changed since its JSON was made.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO = Path(__file__).resolve().parents[2]
SPECS_PATH = REPO / "eval" / "targets.toml"


class SpecError(ValueError):
    """The spec file is missing, is not TOML, or does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Goal(_Strict):
    """A goal on one figure of a target's JSON: the estimate's interval must lie strictly
    above (or below) ``threshold``. Paths are dotted keys into the JSON."""

    name: str
    estimate: str
    low: str | None = None
    high: str | None = None
    direction: Literal["above", "below"]
    threshold: float


class Target(_Strict):
    """One results target."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    command: str = Field(description="The command as the README shows it.")
    measures: str = Field(description="What it measures (the README's column).")
    result: str = Field(description="The results file(s) as the README shows them.")
    steps: list[list[str]] = Field(
        default_factory=list,
        description="argv of each step; '{work}' is the target's resumable work folder and a "
        "leading 'python' is this interpreter. Empty: not automated yet (see ``manual``).",
    )
    manual: str | None = Field(None, description="Why and how it is run by hand, if not steps.")
    json_path: str | None = Field(
        None, alias="json", description="The committed JSON (repo-relative), if it writes one."
    )
    markdown: str | None = None
    depends: list[str] = Field(default_factory=list, description="Fingerprint parts.")
    scripts: list[str] = Field(
        default_factory=list, description="Its own script files (fingerprinted one by one)."
    )
    model: str = "n/a"
    knowledge: str = "n/a"
    users: str = "n/a"
    goals: list[Goal] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _steps_or_manual(self) -> Target:
        if not self.steps and not self.manual:
            raise ValueError(f"target {self.name}: give steps or a manual note")
        if any(not step for step in self.steps):
            raise ValueError(f"target {self.name}: an empty step")
        if self.goals and not self.json_path:
            raise ValueError(f"target {self.name}: goals need a json")
        return self

    @property
    def automated(self) -> bool:
        return bool(self.steps)

    def parts(self) -> list[str]:
        """The fingerprint parts it depends on, its own scripts included."""
        return [*self.depends, *self.scripts]


class Specs(_Strict):
    """The whole spec file: the fingerprint parts and the targets, in README order."""

    parts: dict[str, list[str]] = Field(description="Part name -> glob patterns (repo paths).")
    targets: list[Target]

    @model_validator(mode="after")
    def _consistent(self) -> Specs:
        names = [t.name for t in self.targets]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate target names: {sorted(dup)}")
        for target in self.targets:
            unknown = set(target.depends) - set(self.parts)
            if unknown:
                raise ValueError(f"target {target.name}: unknown parts {sorted(unknown)}")
        return self

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise SpecError(f"unknown target {name!r} (known: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    def script_files(self) -> list[str]:
        """Every target's own scripts, each a fingerprint part named by its path."""
        return sorted({s for t in self.targets for s in t.scripts})


def load_specs(path: Path = SPECS_PATH) -> Specs:
    """Read and validate the spec file; every problem is a :class:`SpecError`."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path} is not TOML: {exc}") from None
    try:
        return Specs.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{path} does not validate:\n{exc}") from None
