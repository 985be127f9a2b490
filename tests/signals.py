"""Helpers for tests that interrupt a child process with a signal."""

from __future__ import annotations

import signal

SENT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""Every signal a test sends to a child (SIGKILL cannot be ignored)."""


def default_signals() -> None:
    """``preexec_fn`` that gives a child the default disposition of every signal tests send.

    A shell that starts a job in the background (``cmd &`` without job control) sets SIGINT
    (and SIGQUIT) to ignored, and ``nohup`` sets SIGHUP to ignored; children inherit that:
    Python then installs no KeyboardInterrupt handler, a test's Ctrl-C or hang-up does
    nothing and the test times out. Tests that signal a child restore the defaults.
    """
    for signum in SENT_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
