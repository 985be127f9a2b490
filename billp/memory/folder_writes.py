"""Crash-safe replacement of a memory folder's files.

Each file is replaced atomically (temp file in the same folder, fsync, ``os.replace``, fsync of
the folder). Because a save replaces several files, the committed version of each data file is
first kept as ``<file>.prev`` (a hard link, or a copy where links are unsupported), so a save
that dies at any point leaves the memory loadable in its previous committed state.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

from billp.common.atomic_io import fsync_dir
from billp.memory.folder_format import DATA_FILES, META_FILE, TEMP_SUFFIX

_TEMP_TOKEN_BYTES = 6


def temp_path(target: Path) -> Path:
    """A fresh hidden temp name beside ``target`` (a stray one is removed by the next save)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(_TEMP_TOKEN_BYTES)}{TEMP_SUFFIX}")


def atomic_backup(source: Path, target: Path) -> None:
    """Make ``target`` an exact copy of ``source`` atomically (hard link, else a fsynced copy)."""
    temp = temp_path(target)
    try:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        # rename() is a no-op when temp and target are already links to one file: drop temp.
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    fsync_dir(target.parent)


def remove_stray_temps(directory: Path) -> None:
    """Delete temp files left by an interrupted save (they are never read)."""
    for name in (*DATA_FILES, META_FILE):
        for stray in directory.glob(f".{name}.*{TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stray.unlink()
