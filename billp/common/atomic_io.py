"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Each write goes to a uniquely named temporary file in the target's folder, is flushed and
fsynced, then renamed over the target with ``os.replace``; the folder is fsynced after the
rename so that successive writes reach the disk in order.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from billp.common import faults


def fsync_dir(directory: Path) -> None:
    """Flush a folder's entries (renames) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (creating its folder if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    faults.point("atomic.before", path)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            if faults.active():
                half = len(data) // 2
                stream.write(data[:half])
                stream.flush()
                faults.point("atomic.mid", path)
                stream.write(data[half:])
            else:
                stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        faults.point("atomic.rename", path)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    faults.point("atomic.after", path)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with indented JSON of ``data`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with one JSON line per record, atomically."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
