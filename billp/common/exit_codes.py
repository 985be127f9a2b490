"""Exit statuses of billp's commands (``python -m billp.simulate``, ``billp.evaluation``,
``billp.le``, ``billp.rl`` and the ``eval/`` scripts)."""

EXIT_BAD_INPUT = 2
"""A bad config, a missing file or another input error, found before any expensive start."""
EXIT_LLM_FAILURE = 3
"""The LLM server failed (after bounded retries) or did not start."""
EXIT_IO_FAILURE = 4
"""Writing a run file failed (disk full, I/O error)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT)."""
