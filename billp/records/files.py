"""The durable files of a run directory: their names, JSONL appends, the run lock, exclusive
creation.

``episodes.jsonl`` and ``steps.jsonl`` grow by appends: each line is written with one
``write`` on an ``O_APPEND`` descriptor and fsynced before :meth:`JsonlAppender.write`
returns. A kill (or power cut) during an append can leave a *torn* last line: bytes with no
final newline, or a last line that is not JSON. Reading skips such a tail, and ``--resume``
truncates it (with a warning) before anything is appended again, so the next line never glues
onto it (:mod:`billp.records`, which owns the run directory's files and the one rule for bad
lines); the episode it belonged to was not finished and is played again.

A run directory is created with an exclusive ``mkdir`` (two runs started in the same second
get different names) and is locked (``.billp.lock``, an OS file lock the kernel releases when
the process dies) for as long as a process writes it: a second ``--resume`` stops at once.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from billp.common import faults
from billp.common.atomic_io import fsync_dir, write_text_atomic

CONFIG_FILE = "config.toml"
MANIFEST_FILE = "manifest.json"
EPISODES_FILE = "episodes.jsonl"
STEPS_FILE = "steps.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".billp.lock"


class RunFileError(ValueError):
    """A run file is damaged in a way no interrupted write explains; the message names it."""


class RunDirInUseError(ValueError):
    """Another process holds the run directory's lock."""


# ------------------------------------------------------------------ appending
class JsonlAppender:
    """Appends JSON lines and makes each one durable before returning.

    A failed write (disk full, I/O error) may leave part of a line on disk; the appender then
    refuses further writes (the next resume truncates the partial line).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._failed: OSError | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self._failed is not None:
            raise OSError(
                self._failed.errno,
                f"an earlier append failed ({self._failed.strerror})",
                str(self.path),
            )
        if self._fd is None:
            raise ValueError(f"{self.path}: appender is closed")
        data = (json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
        try:
            faults.point("append.before", self.path)
            if faults.active():
                half = len(data) // 2
                self._write_all(data[:half])
                faults.point("append.mid", self.path)
                self._write_all(data[half:])
            else:
                self._write_all(data)
            faults.point("append.fsync", self.path)
            os.fsync(self._fd)
        except OSError as exc:
            if exc.filename is None:
                exc.filename = str(self.path)
            self._failed = exc
            raise

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# ------------------------------------------------------------------ the directory
def create_run_dir(parent: Path, name: str, config_text: str) -> Path:
    """Create ``parent/name`` (or ``name-2``, ``name-3``, ...) exclusively, with its config."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while True:
        run_dir = parent / (name if suffix == 1 else f"{name}-{suffix}")
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            suffix += 1
    try:
        write_text_atomic(run_dir / CONFIG_FILE, config_text)
    except BaseException:
        with contextlib.suppress(OSError):
            for child in run_dir.iterdir():
                child.unlink()
            run_dir.rmdir()
        raise
    fsync_dir(parent)
    return run_dir


@contextlib.contextmanager
def locked_run_dir(run_dir: Path) -> Iterator[Path]:
    """Hold the run directory's exclusive lock, or raise :class:`RunDirInUseError` at once."""
    lock = FileLock(str(Path(run_dir) / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunDirInUseError(
            f"run directory {run_dir} is in use by another billp process (it holds "
            f"{Path(run_dir) / LOCK_FILE}); wait for that run to end or stop it, then resume"
        ) from None
    try:
        yield Path(run_dir)
    finally:
        lock.release()
