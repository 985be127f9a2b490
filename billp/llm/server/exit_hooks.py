"""Stopping every live vLLM server when billp exits: at interpreter exit and on SIGTERM/SIGHUP."""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol


class Stoppable(Protocol):
    """A server the exit hooks can stop (a :class:`~billp.llm.server.VLLMServer`)."""

    def stop(self) -> None: ...


_LIVE: set[Stoppable] = set()
_LIVE_LOCK = threading.RLock()  # re-entered by the signal handler
_ATEXIT_INSTALLED = False
_SIGNALS_INSTALLED = False
_EXIT_SIGNALS = ("SIGTERM", "SIGHUP")


def track(server: Stoppable) -> None:
    """Count ``server`` among the live servers that the exit hooks stop."""
    with _LIVE_LOCK:
        _LIVE.add(server)


def untrack(server: Stoppable) -> None:
    """Forget ``server`` (it was stopped)."""
    with _LIVE_LOCK:
        _LIVE.discard(server)


def stop_all_servers() -> None:
    """Stop every server this process started and has not stopped yet."""
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


def _on_exit_signal(previous: Any) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop_all_servers()
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return handler


def install_exit_hooks() -> None:
    """atexit once per process; SIGTERM/SIGHUP handlers once, from the main thread.

    A signal the process ignores stays ignored; an existing Python handler is chained.
    """
    global _ATEXIT_INSTALLED, _SIGNALS_INSTALLED
    if not _ATEXIT_INSTALLED:
        atexit.register(stop_all_servers)
        _ATEXIT_INSTALLED = True
    if _SIGNALS_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    _SIGNALS_INSTALLED = True
    for name in _EXIT_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN or previous is None:
            continue
        signal.signal(signum, _on_exit_signal(previous))
