"""The behaviour fingerprint: one digest per part of the tree that decides what agents and
worlds do.

A part's digest is the SHA-256 of its files' sorted ``path<NUL>blob`` lines, where ``blob`` is
the git blob id of the file's *contents* as it is on disk now (``git hash-object``), so a
clean clone of the same commit gives the same fingerprint and an uncommitted edit already
changes it. In a git work tree only tracked files count (``git ls-files``: a new file counts
once it is added); outside one (a test's temporary copy) every file under the patterns does.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _tracked_files(root: Path) -> list[str] | None:
    """The tracked files of ``root``'s git work tree (repo-relative), or ``None`` outside one."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--full-name"],
            capture_output=True,
            check=False,
        )
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no git on this machine, or it cannot run: fingerprint plain files
        return None
    if done.returncode != 0 or top.returncode != 0:
        return None
    if Path(top.stdout.strip()).resolve() != root.resolve():
        return None  # root is a folder inside some other repository: treat it as plain files
    return [p for p in done.stdout.decode("utf-8").split("\0") if p]


def _all_files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def _matches(path: str, pattern: str) -> bool:
    """Glob match on repo-relative posix paths; ``**`` spans folders, ``*`` does not."""
    if pattern.endswith("/**"):
        return path.startswith(pattern[:-2])
    if "**/" in pattern:
        head, tail = pattern.split("**/", 1)
        return path.startswith(head) and fnmatchcase(path.rsplit("/", 1)[-1], tail)
    return fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def part_digest(root: Path, files: Iterable[str]) -> str:
    """The digest of a set of files (repo-relative paths) by their contents."""
    lines = []
    for path in sorted(set(files)):
        full = root / path
        if not full.is_file():  # tracked but deleted in the work tree
            continue
        lines.append(f"{path}\0{blob_id(full.read_bytes())}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()[:16]


def fingerprint(
    root: Path, parts: Mapping[str, Iterable[str]], scripts: Iterable[str] = ()
) -> dict[str, str]:
    """Digest of each named part (glob patterns) and of each script file (a part named by its
    path), over ``root``'s tracked files."""
    files = _tracked_files(root)
    if files is None:
        files = _all_files(root)
    result = {
        name: part_digest(root, [f for f in files if any(_matches(f, p) for p in patterns)])
        for name, patterns in parts.items()
    }
    for script in scripts:
        result[script] = part_digest(root, [script] if script in files else [])
    return dict(sorted(result.items()))


def changed_parts(
    recorded: Mapping[str, str], now: Mapping[str, str], parts: Iterable[str]
) -> list[str]:
    """The parts (of ``parts``) whose recorded digest differs from today's or is missing."""
    return [p for p in parts if recorded.get(p) is None or recorded.get(p) != now.get(p)]
