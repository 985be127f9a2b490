"""Share of Planner and Reflector replies that echo their template or loop on a phrase.

    python eval/echo_rate.py RUN_DIR [RUN_DIR ...]

For every planner and reflector call in ``steps.jsonl`` it checks, with the run's own
templates (from ``manifest.json``) and :class:`billp.agents.echo.EchoDetector`:

* ``first reply``: whether the model's first answer was an echo (a first answer that
  failed the agent's echo check is recorded as the call's error);
* ``final reply``: the last raw reply of the call (after a re-ask, if any);
* ``used text``: the plan or lesson the agent went on with (valid, re-asked, repaired, or
  the logged fallback), which is what reaches memories and later prompts: the free text
  with the structured fields composed in front (``Plan.text()``, ``Reflection.lesson()``).

With ``agent.free_text`` off the replies hold only enumerated fields (genres, an anchor
title), which cannot echo; they are counted under "structured only".

Old runs, whose agents did not check for echoes, are measured by their final replies.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from billp.agents.echo import EchoDetector
from billp.agents.messages import Plan, Reflection
from billp.agents.prompts import ROLE_TEMPLATES
from billp.agents.roles import CallTrace
from billp.records import read_steps

TEXT_FIELD = {"planner": "thought", "reflector": "reflection"}


def _text(reply: str | None, field: str) -> str | None:
    """The free-text field of a reply (the reply itself when it is no JSON object);
    None when the reply is a JSON object without that field (structured only)."""
    if reply is None:
        return ""
    try:
        data = json.loads(reply)
    except json.JSONDecodeError:
        return reply
    if isinstance(data, dict):
        value = data.get(field)
        return value if isinstance(value, str) else None
    return reply


def used_text(role: str, parsed: dict[str, Any]) -> str:
    """The plan or lesson text the agent built from a parsed reply."""
    try:
        if role == "planner":
            return Plan.model_validate(parsed).text()
        return Reflection.model_validate(parsed).lesson()
    except ValidationError:
        return str(parsed.get(TEXT_FIELD[role], ""))


def _calls(run_dir: Path) -> list[CallTrace]:
    """The Planner and Reflector calls of the run's ``steps.jsonl``."""
    return [c for line in read_steps(run_dir) for c in line.calls if c.role in TEXT_FIELD]


def measure(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per role: calls, echo counts by kind for first/final replies and used text."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    sources = manifest.get("template_sources", {})
    detectors = {role: EchoDetector([sources[ROLE_TEMPLATES[role]]]) for role in TEXT_FIELD}
    out: dict[str, dict[str, Any]] = {}
    for role in TEXT_FIELD:
        out[role] = {
            "calls": 0,
            "structured": 0,
            "first": Counter(),
            "final": Counter(),
            "used": Counter(),
        }
    for call in _calls(run_dir):
        role, field = call.role, TEXT_FIELD[call.role]
        stats, detector = out[role], detectors[role]
        stats["calls"] += 1
        free = _text(call.raw, field)
        if free is None:
            stats["structured"] += 1
        final = None if free is None else detector.kind(free)
        used = detector.kind(used_text(role, call.parsed))
        error = call.error or ""
        first = next((k for k in ("placeholder", "repetition", "empty") if f"({k})" in error), None)
        if call.stage == "valid":
            first = final
        stats["final"][final or "clean"] += 1
        stats["used"][used or "clean"] += 1
        stats["first"][first or "clean"] += 1
    return out


def _share(counter: Counter, calls: int) -> str:
    bad = calls - counter.get("clean", 0)
    return f"{bad}/{calls} ({100 * bad / calls:.1f} %)" if calls else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    print(
        "| run | role | calls | structured only | first reply echoes | final reply echoes "
        "| used text echoes |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for run_dir in args.run_dirs:
        if not (run_dir / "steps.jsonl").is_file():
            print(f"error: {run_dir} has no steps.jsonl", file=sys.stderr)
            return 2
        for role, stats in measure(run_dir).items():
            calls = stats["calls"]
            print(
                f"| {run_dir.name} | {role} | {calls} | {stats['structured']} | "
                f"{_share(stats['first'], calls)} | "
                f"{_share(stats['final'], calls)} | {_share(stats['used'], calls)} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
