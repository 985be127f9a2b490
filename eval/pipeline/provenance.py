"""The provenance block every results JSON carries, the markdown header made from it, and
the atomic write of a results JSON and its markdown.

A results script calls :func:`collect` after its measurement and :func:`write_results` with
its numbers and a ``render(data) -> str`` that makes the markdown body from the JSON alone;
the header (command, commit, date, machine, wall time, model, knowledge, users) comes from
the block, so no results file has hand-written provenance.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from billp.common.atomic_io import write_json_atomic, write_text_atomic
from pipeline.fingerprint import fingerprint
from pipeline.specs import REPO, SPECS_PATH, load_specs

SIMD_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
"""The CPU flags that decide which kernels (and so which speeds and numerics) a run gets."""

GENERATED = "<!-- generated from the results JSON beside it (eval/pipeline); do not edit -->"


class Machine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu_model: str
    cores: int
    simd: list[str]
    arch: str


class Provenance(BaseModel):
    """Who made a results JSON, how, where, and from which behaviour (the fingerprint)."""

    model_config = ConfigDict(extra="forbid")

    command: str
    commit: str
    dirty: bool
    date_utc: str
    machine: Machine
    wall_s: float
    model: str
    knowledge: str
    users: str
    fingerprint: dict[str, str]


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> Machine:
    """CPU model, usable cores and the SIMD flags of :data:`SIMD_FLAGS` this CPU has."""
    model, flags = "unknown", set[str]()
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "unknown":
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass  # not Linux: the model stays "unknown"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Machine(
        cpu_model=model,
        cores=cores or 0,
        simd=[f for f in SIMD_FLAGS if f in flags],
        arch=os.uname().machine,
    )


def git_commit(root: Path = REPO) -> tuple[str, bool]:
    """HEAD's commit id and whether tracked files differ from it (``("unknown", True)``
    outside a git work tree)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        return "unknown", True
    if head.returncode != 0:
        return "unknown", True
    return head.stdout.strip(), bool(status.stdout.strip())


def current_fingerprint(root: Path = REPO, specs_path: Path = SPECS_PATH) -> dict[str, str]:
    """Today's fingerprint of every part and every target's script under ``root``."""
    specs = load_specs(specs_path)
    return fingerprint(root, specs.parts, specs.script_files())


class Source(BaseModel):
    """What a run was made from: the commit, whether the tree differed from it, and the
    behaviour fingerprint, read when the run starts (a long run's tree may change under it)."""

    model_config = ConfigDict(extra="forbid")

    commit: str
    dirty: bool
    fingerprint: dict[str, str]


def source(root: Path = REPO) -> Source:
    """The :class:`Source` of a run starting now under ``root``."""
    commit, dirty = git_commit(root)
    return Source(
        commit=commit,
        dirty=dirty,
        fingerprint=current_fingerprint(root, root / "eval" / "targets.toml"),
    )


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """How a results script under ``eval/`` was run: ``python eval/SCRIPT`` with ``argv``
    (default: this process's arguments), shell-quoted, as provenance records it."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", f"eval/{script}", *args])


def collect(
    command: str | Sequence[str],
    wall_s: float,
    *,
    model: str = "n/a",
    knowledge: str = "n/a",
    users: str = "n/a",
    root: Path = REPO,
    started: Source | None = None,
) -> Provenance:
    """The provenance of a run that has just finished (call it after the measurement);
    ``started``: its :func:`source`, read when it started (default: read now, for runs too
    short for the tree to change under them)."""
    made = started or source(root)
    text = command if isinstance(command, str) else " ".join(command)
    return Provenance(
        command=text,
        commit=made.commit,
        dirty=made.dirty,
        date_utc=f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        machine=machine(),
        wall_s=round(wall_s, 1),
        model=model,
        knowledge=knowledge,
        users=users,
        fingerprint=made.fingerprint,
    )


def format_wall(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def header_markdown(title: str, prov: Provenance) -> str:
    """The generated head of a results markdown: title and the provenance table."""
    mach = prov.machine
    simd = ", ".join(mach.simd) if mach.simd else "none of " + ", ".join(SIMD_FLAGS[:3])
    commit = prov.commit[:12] + (" (with uncommitted changes)" if prov.dirty else "")
    rows = [
        ("command", f"`{prov.command}`"),
        ("commit", commit),
        ("date", f"{prov.date_utc} UTC"),
        ("machine", f"{mach.cpu_model}, {mach.cores} cores, {mach.arch}; SIMD: {simd}"),
        ("wall time", format_wall(prov.wall_s)),
        ("model", prov.model),
        ("knowledge", prov.knowledge),
        ("users", prov.users),
    ]
    lines = [GENERATED, f"# {title}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines) + "\n"


def write_results(
    json_path: Path,
    markdown_path: Path | None,
    data: dict[str, Any],
    render: Callable[[dict[str, Any]], str],
) -> None:
    """Write the JSON (``data`` with its ``provenance`` block) and the markdown rendered from
    that JSON, each atomically (temporary file, then rename): a failed write leaves the old
    file. The markdown is rendered *before* anything is written, from the JSON as read back,
    so it holds nothing the JSON does not."""
    if "provenance" not in data:
        raise ValueError("a results JSON needs its provenance block")
    Provenance.model_validate(data["provenance"])
    text = render(_round_trip(data)) if markdown_path is not None else None
    write_json_atomic(json_path, data)
    if markdown_path is not None and text is not None:
        write_text_atomic(markdown_path, text)


def _round_trip(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))
