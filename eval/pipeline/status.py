"""Fresh, stale or missing: a target's JSON against today's fingerprint.

* ``fresh``: its JSON's fingerprint equals today's on every part the target depends on;
* ``stale``: some of those parts changed since (listed);
* ``missing``: the spec names a JSON that is not there;
* ``no JSON yet``: the target does not write a JSON (its results file predates the pipeline);
* ``no provenance``: its JSON has no provenance block (made before the pipeline).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.fingerprint import changed_parts
from pipeline.provenance import Provenance
from pipeline.specs import Target


class State(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    MISSING = "missing"
    NO_JSON = "no JSON yet"
    NO_PROVENANCE = "no provenance"


class TargetStatus(BaseModel):
    name: str
    state: State
    changed: list[str] = []
    provenance: Provenance | None = None
    data: dict[str, Any] | None = None

    def describe(self) -> str:
        if self.state is State.STALE:
            return f"stale ({', '.join(self.changed)} changed)"
        return str(self.state)


def read_json(path: Path) -> dict[str, Any] | None:
    """A results JSON, or ``None`` if absent; a JSON that is not an object is an error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def target_status(target: Target, root: Path, today: dict[str, str]) -> TargetStatus:
    """The status of ``target`` under ``root`` against today's fingerprint ``today``."""
    if target.json_path is None:
        return TargetStatus(name=target.name, state=State.NO_JSON)
    data = read_json(root / target.json_path)
    if data is None:
        return TargetStatus(name=target.name, state=State.MISSING)
    try:
        prov = Provenance.model_validate(data["provenance"])
    except (KeyError, ValidationError):
        return TargetStatus(name=target.name, state=State.NO_PROVENANCE, data=data)
    changed = changed_parts(prov.fingerprint, today, target.parts())
    state = State.STALE if changed else State.FRESH
    return TargetStatus(name=target.name, state=state, changed=changed, provenance=prov, data=data)
