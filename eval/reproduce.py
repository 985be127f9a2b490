"""Regenerate the results files from the specs in ``eval/targets.toml``.

    python eval/reproduce.py [TARGET ...]      # run these targets (all automated ones if none)
    python eval/reproduce.py --list            # every target, its command and last wall time
    python eval/reproduce.py --status          # fresh / stale (which parts changed) / missing
    python eval/reproduce.py --readme          # rewrite README's results table
    python eval/reproduce.py --readme --check  # exit 1 if README's table is out of date

Each target runs its steps in a work folder (``--work``, default ``runs/reproduce``, one
subfolder per target and behaviour: a digest of today's fingerprint of the parts it depends
on) that its scripts resume from; finished steps are recorded there and skipped when the
target runs again with the same behaviour, and a stale target starts afresh in a new folder
(``--restart`` forgets every folder of the target). Results JSONs carry a
provenance block (:mod:`pipeline.provenance`) with a behaviour fingerprint
(:mod:`pipeline.fingerprint`); the README's table (:mod:`pipeline.readme`) shows each target
as fresh or stale against today's tree, with the verdicts of its goals
(:mod:`pipeline.verdict`). Unknown targets and a broken spec exit 2 before anything runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from pipeline.fingerprint import fingerprint
from pipeline.provenance import format_wall
from pipeline.readme import ReadmeError, current_table, replace_table, table
from pipeline.runner import run_target
from pipeline.specs import REPO, SpecError, Specs, Target, load_specs
from pipeline.status import TargetStatus, target_status

from billp.common.atomic_io import write_text_atomic
from billp.common.exit_codes import EXIT_BAD_INPUT


def statuses(specs: Specs, root: Path) -> list[TargetStatus]:
    today = fingerprint(root, specs.parts, specs.script_files())
    return [target_status(t, root, today) for t in specs.targets]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="Targets to run (default: every automated one).")
    parser.add_argument("--list", action="store_true", help="List the targets.")
    parser.add_argument("--status", action="store_true", help="Fresh / stale / missing.")
    parser.add_argument("--readme", action="store_true", help="Rewrite README's results table.")
    parser.add_argument("--check", action="store_true", help="With --readme: only compare.")
    parser.add_argument("--specs", type=Path, default=None, help="Spec file (tests).")
    parser.add_argument("--root", type=Path, default=REPO, help="Repository root (tests).")
    parser.add_argument("--work", type=Path, default=None, help="Work folders' home.")
    parser.add_argument("--restart", action="store_true", help="Forget finished steps.")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        specs = load_specs(args.specs or root / "eval" / "targets.toml")
        chosen = [specs.target(name) for name in args.targets]
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.check and not args.readme:
        print("error: --check goes with --readme", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.list or args.status:
        if chosen or (args.list and args.status):
            print("error: --list and --status take no targets, nor each other", file=sys.stderr)
            return EXIT_BAD_INPUT
        for target, status in zip(specs.targets, statuses(specs, root), strict=True):
            wall = format_wall(status.provenance.wall_s) if status.provenance else "—"
            if args.list:
                how = "automated" if target.automated else f"by hand: {target.manual}"
                print(f"{target.name:24} last wall time {wall:>8}  {how}")
            else:
                print(f"{target.name:24} {status.describe()}")
        return 0
    if args.readme:
        if chosen:
            print("error: --readme takes no targets", file=sys.stderr)
            return EXIT_BAD_INPUT
        return write_readme(specs, root, check=args.check)
    chosen = chosen or [t for t in specs.targets if t.automated]
    by_hand = [t.name for t in chosen if not t.automated]
    if by_hand:
        print(f"error: not automated yet (see --list): {', '.join(by_hand)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    home = args.work or root / "runs" / "reproduce"
    today = fingerprint(root, specs.parts, specs.script_files())
    for target in chosen:
        if args.restart and (home / target.name).exists():
            shutil.rmtree(home / target.name)
        work = home / target.name / behaviour_key(target, today)
        code = run_target(target, work, root)
        if code != 0:
            return code
    return write_readme(specs, root, check=False)


def behaviour_key(target: Target, today: dict[str, str]) -> str:
    """A short digest of today's fingerprint of the parts ``target`` depends on: its work
    folder's name, so a target resumes only runs made with the same behaviour, and a stale
    target starts afresh."""
    parts = json.dumps({part: today.get(part) for part in target.parts()}, sort_keys=True)
    return hashlib.sha256(parts.encode("utf-8")).hexdigest()[:12]


def write_readme(specs: Specs, root: Path, *, check: bool) -> int:
    """Rewrite README's results table (``check``: only compare; 1 if out of date)."""
    path = root / "README.md"
    text = path.read_text(encoding="utf-8")
    new = table(specs, statuses(specs, root))
    try:
        updated = replace_table(text, new)
        if check:
            if current_table(text) != new:
                print("README's results table is out of date: python eval/reproduce.py --readme")
                return 1
            return 0
    except ReadmeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if updated != text:
        write_text_atomic(path, updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
