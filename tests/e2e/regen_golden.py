"""Regenerate the golden files of the end-to-end tests: ``python -m tests.e2e.regen_golden``.

Run it after a change that is meant to alter runs (prompts, step-record fields, the scripted
LLM), then review ``git diff tests/e2e/golden`` and commit. The comparing tests never write
golden files. ``--check`` compares instead of writing (exit 1 on a difference).

Each golden run is the CLI on ``tests/e2e/tiny.toml`` plus its extra flags. Files per run:
``<name>_episodes.jsonl``, ``<name>_steps.jsonl`` and ``<name>_summary.json`` (timings, the keys
ending in ``_s``, removed). They are compared as ``tests/e2e/golden_compare.py`` says: discrete
content exactly, floats at its stated precision; a file that matches at that precision is not
rewritten.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.e2e.conftest import REPO, only_run_dir, run_cli, simulate_cmd
from tests.e2e.golden_compare import differences

GOLDEN_DIR = REPO / "tests" / "e2e" / "golden"
GOLDEN_RUNS: dict[str, list[str]] = {
    "tiny": [],
    # Short cap: train-0001 reaches it (truncated, not quit).
    "tiny_cap": ["--env.max-steps", "3", "--train-users", "2", "--test-users", "1"],
}


WALL_CLOCK_KEYS = frozenset({"throughput", "engine_idle_share"})
"""Keys whose values all follow from wall-clock time (users per hour, the share of time
with no LLM request in flight)."""


def without_timings(node: Any) -> Any:
    """``node`` without the keys ending in ``_s`` or in :data:`WALL_CLOCK_KEYS` (wall-clock
    timings differ between runs)."""
    if isinstance(node, dict):
        return {
            k: without_timings(v)
            for k, v in node.items()
            if not k.endswith("_s") and k not in WALL_CLOCK_KEYS
        }
    if isinstance(node, list):
        return [without_timings(v) for v in node]
    return node


def golden_outputs(name: str, run_dir: Path) -> dict[str, bytes]:
    """The golden files of run ``name`` as its run directory gives them."""
    steps = [
        json.dumps(without_timings(json.loads(line)), ensure_ascii=False) + "\n"
        for line in (run_dir / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    summary = without_timings(json.loads((run_dir / "summary.json").read_text(encoding="utf-8")))
    return {
        f"{name}_episodes.jsonl": (run_dir / "episodes.jsonl").read_bytes(),
        f"{name}_steps.jsonl": "".join(steps).encode("utf-8"),
        f"{name}_summary.json": (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode(),
    }


def produce(
    name: str, out: Path, cache: Path, environment: dict[str, str] | None = None
) -> dict[str, bytes]:
    """Run golden run ``name`` in ``out`` (with ``environment`` added to the process's
    variables) and return its golden files."""
    result = run_cli(simulate_cmd(out, *GOLDEN_RUNS[name]), cache, environment=environment)
    if result.returncode != 0:
        raise RuntimeError(f"golden run {name} failed:\n{result.stderr[-3000:]}")
    return golden_outputs(name, only_run_dir(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.regen_golden", description=__doc__)
    parser.add_argument("--check", action="store_true", help="Compare; write nothing.")
    parser.add_argument(
        "names", nargs="*", help=f"Runs to redo (default: all of {list(GOLDEN_RUNS)})."
    )
    args = parser.parse_args(argv)
    differing = []
    with tempfile.TemporaryDirectory(prefix="billp-golden-") as tmp:
        for name in args.names or GOLDEN_RUNS:
            for file, data in produce(name, Path(tmp) / name, Path(tmp) / "cache").items():
                path = GOLDEN_DIR / file
                same = path.is_file() and not differences(data, path.read_bytes())
                if args.check:
                    differing += [] if same else [file]
                elif not same:
                    path.write_bytes(data)
                    print(f"wrote {path.relative_to(REPO)}")
    if differing:
        print(f"differ from the golden files: {', '.join(differing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
