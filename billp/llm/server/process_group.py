"""The vLLM server's process group: whether it lives, stopping all of it (SIGTERM, then
SIGKILL), and the Linux hook that signals the server when billp dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

# The logger of the module this one was split from: log lines (their format shows the
# logger) and filters on "billp.llm.server" stay as they were.
logger = logging.getLogger("billp.llm.server")


STOP_GRACE_S = 15.0
"""Seconds between SIGTERM and SIGKILL when stopping the server's process group."""
KILL_WAIT_S = 5.0
STOP_POLL_S = 0.05
PR_SET_PDEATHSIG = 1


def _process_group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) pids in group ``pgid`` from /proc; ``None`` where /proc is absent."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # fields[0] = state, fields[2] = pgrp (stat fields 3 and 5).
        if len(fields) > 2 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process remains in process group ``pgid``."""
    members = _process_group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _wait_group_gone(process: subprocess.Popen[bytes], pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so it does not linger as a zombie
        if not group_alive(pgid):
            return True
        time.sleep(STOP_POLL_S)
    process.poll()
    return not group_alive(pgid)


def terminate_process_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the group led by ``process``; SIGKILL whatever is left after ``grace_s``."""
    pgid = process.pid
    _signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone(process, pgid, grace_s):
        return
    logger.warning("vLLM server group %d ignored SIGTERM for %.0f s; killing it", pgid, grace_s)
    _signal_group(pgid, signal.SIGKILL)
    if not _wait_group_gone(process, pgid, KILL_WAIT_S):
        logger.error("processes of group %d survived SIGKILL", pgid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_WAIT_S)


def parent_death_hook() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child when this thread dies, if possible.

    Only used from the main thread: the kernel fires on the exit of the creating *thread*.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook
