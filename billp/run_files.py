"""The durable files of a run directory: JSONL appends, torn-tail recovery, the run lock.

``episodes.jsonl`` and ``steps.jsonl`` grow by appends: each line is written with one
``write`` on an ``O_APPEND`` descriptor and fsynced before :meth:`JsonlAppender.write`
returns. A kill (or power cut) during an append can leave a *torn* last line: bytes with no
final newline, or a last line that is not JSON. :func:`recover_run_files` truncates such a tail
(with a warning) before anything is appended again, so the next line never glues onto it;
the episode it belonged to was not finished and is played again. A damaged line anywhere
else is not something a crash leaves: it stops the resume with an error naming the file
and the line.

A run directory is created with an exclusive ``mkdir`` (two runs started in the same second
get different names) and is locked (``.billp.lock``, an OS file lock the kernel releases when
the process dies) for as long as a process writes it: a second ``--resume`` stops at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from pydantic import BaseModel, ValidationError

from billp import faults
from billp.atomic_io import fsync_dir, write_jsonl_atomic, write_text_atomic

log = logging.getLogger(__name__)

LOCK_FILE = ".billp.lock"
R = TypeVar("R", bound=BaseModel)


class RunFileError(ValueError):
    """A run file is damaged in a way no interrupted write explains; the message names it."""


class RunDirInUse(ValueError):
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


# ------------------------------------------------------------------ reading
def _parse_lines(path: Path) -> tuple[list[dict[str, Any]], int, int]:
    """Complete records of ``path``, the byte length they span, and the file's length.

    A torn tail (bytes after the last newline, or an unparsable last line) is left out;
    an unparsable line before the last raises :class:`RunFileError`.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0, 0
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, raw in enumerate(complete, 1):
        end = good + len(raw) + 1
        if not raw.strip():
            good = end
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
        except ValueError as exc:
            if number == len(complete) and not tail:
                break  # the last line itself is torn
            raise RunFileError(
                f"{path} line {number} is not a valid JSON record ({exc}); only a torn last "
                "line can come from an interrupted write, so the file was damaged otherwise: "
                "restore it from a backup or start a new run"
            ) from None
        records.append(record)
        good = end
    return records, good, len(data)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete records of a JSONL run file (a torn last line is left out)."""
    return _parse_lines(Path(path))[0]


def _truncate(path: Path, length: int, size: int) -> None:
    log.warning(
        "%s: truncating a torn last line (%d bytes left by an interrupted write); "
        "its episode is played again",
        path,
        size - length,
    )
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl_repairing(path: Path) -> list[dict[str, Any]]:
    """The complete records of ``path``, truncating a torn last line on disk first."""
    records, good, size = _parse_lines(path)
    if good != size:
        _truncate(path, good, size)
    return records


def _validate(path: Path, model: type[R], line: dict[str, Any], number: int) -> R:
    try:
        return model.model_validate(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<record>"
        raise RunFileError(
            f"{path}: record {number} is not a valid {model.__name__} "
            f"({where}: {first['msg']}); restore the file or start a new run"
        ) from None


def recover_run_files(
    run_dir: Path,
    record_model: type[R],
    wanted: Callable[[R], bool],
    key: Callable[[R], str],
) -> list[R]:
    """Finished episode records of ``run_dir``, with its JSONL files made safe to append to.

    Torn tails are truncated; records not ``wanted`` (not in the plan) and repeats of a key are
    dropped; step lines of episodes without a record are dropped (those episodes run again).
    """
    episodes_path = run_dir / "episodes.jsonl"
    raw = read_jsonl_repairing(episodes_path)
    finished: dict[str, R] = {}
    for number, line in enumerate(raw, 1):
        record = _validate(episodes_path, record_model, line, number)
        if wanted(record) and key(record) not in finished:
            finished[key(record)] = record
    if len(finished) != len(raw):
        log.warning(
            "%s: dropping %d repeated or unplanned records", episodes_path, len(raw) - len(finished)
        )
        write_jsonl_atomic(episodes_path, [r.model_dump(mode="json") for r in finished.values()])
    steps_path = run_dir / "steps.jsonl"
    steps = read_jsonl_repairing(steps_path)
    kept = [line for line in steps if line.get("episode") in finished]
    if len(kept) != len(steps):
        write_jsonl_atomic(steps_path, kept)
    return list(finished.values())


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
        write_text_atomic(run_dir / "config.toml", config_text)
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
    """Hold the run directory's exclusive lock, or raise :class:`RunDirInUse` at once."""
    lock = FileLock(str(Path(run_dir) / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunDirInUse(
            f"run directory {run_dir} is in use by another billp process (it holds "
            f"{Path(run_dir) / LOCK_FILE}); wait for that run to end or stop it, then resume"
        ) from None
    try:
        yield Path(run_dir)
    finally:
        lock.release()
