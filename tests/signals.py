"""Helpers for tests that interrupt a child process with a signal."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` that gives a child the default SIGINT disposition.

    A shell that starts a job in the background (``cmd &`` without job control) sets SIGINT
    to ignored, and children inherit that: Python then installs no KeyboardInterrupt
    handler and a test's Ctrl-C does nothing. Tests that send SIGINT restore the default.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
