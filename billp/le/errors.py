"""Errors of the LLM environment model; each message names the file, item or field at fault."""

from __future__ import annotations


class LEError(ValueError):
    """A bad input to the LE (an empty history, a malformed argument)."""


class CheckpointError(LEError):
    """An LE checkpoint folder is missing, unreadable or corrupted."""


class CheckpointMismatchError(CheckpointError):
    """An LE checkpoint was trained for another base model or another catalogue."""
