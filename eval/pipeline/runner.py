"""Running a target's steps, resumably.

Each target gets a work folder (``{work}`` in its steps; default ``runs/reproduce/<target>``)
that its scripts resume from (``--out``/``--out-dir``), and a ``reproduce-state.json`` there
listing the steps that finished (by a hash of their argv). Running the target again skips
finished steps and reruns the rest, so a long target can be stopped (Ctrl-C, a kill, a
failed step) and picked up later. A changed step (other argv) is a new step.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from pydantic import BaseModel

from billp.common.atomic_io import write_json_atomic
from billp.common.exit_codes import EXIT_INTERRUPTED
from pipeline.specs import Target

STATE_FILE = "reproduce-state.json"


class StepDone(BaseModel):
    argv: list[str]
    wall_s: float


class RunState(BaseModel):
    done: dict[str, StepDone] = {}


def resolve(step: list[str], work: Path) -> list[str]:
    """A step's argv with ``{work}`` filled in and a leading ``python`` as this interpreter."""
    argv = [arg.replace("{work}", str(work)) for arg in step]
    if argv[0] == "python":
        argv[0] = sys.executable
    return argv


def step_key(argv: list[str]) -> str:
    return hashlib.sha256("\0".join(argv).encode("utf-8")).hexdigest()[:16]


def load_state(work: Path) -> RunState:
    path = work / STATE_FILE
    if not path.exists():
        return RunState()
    return RunState.model_validate_json(path.read_text(encoding="utf-8"))


def run_target(target: Target, work: Path, root: Path, log=print) -> int:
    """Run ``target``'s unfinished steps in order from ``root``; the first failing step's exit
    status (130 on Ctrl-C; finished steps stay recorded), or 0."""
    work.mkdir(parents=True, exist_ok=True)
    state = load_state(work)
    for number, step in enumerate(target.steps, 1):
        argv = resolve(step, work)
        key = step_key(step)
        if key in state.done:
            log(f"[{target.name}] step {number}/{len(target.steps)} already done, skipped")
            continue
        log(f"[{target.name}] step {number}/{len(target.steps)}: {' '.join(argv)}")
        start = time.monotonic()
        try:
            code = subprocess.run(argv, cwd=root, check=False).returncode
        except KeyboardInterrupt:  # Ctrl-C reached the step too (same process group)
            code = EXIT_INTERRUPTED
        if code != 0:
            log(f"[{target.name}] step {number} failed (exit {code}); run again to resume")
            return code
        state.done[key] = StepDone(argv=step, wall_s=round(time.monotonic() - start, 1))
        write_json_atomic(work / STATE_FILE, json.loads(state.model_dump_json()))
    return 0
