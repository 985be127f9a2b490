"""Fault injection for crash-consistency tests: off unless a test turns it on.

Every durable write of billp (``billp.common.atomic_io`` and the JSONL appender of
``billp.records.files``) calls :func:`point` at fixed stages. Normally that is one attribute test
and a return. A test enables faults with the environment variable ``BILLP_FAULTS`` (a JSON
object, read once, at the first fault point) or with :func:`configure` in-process:

* ``{"trace": PATH}`` appends one line ``N<TAB>stage<TAB>path`` per fault point reached
  (numbered from 1), so a harness can list the points of a run;
* ``{"kill_at": N}`` SIGKILLs this process at the N-th fault point;
* ``{"errno": "ENOSPC", "match": "episodes.jsonl", "stage": "append.mid", "nth": 1}`` raises
  ``OSError(ENOSPC)`` naming the file at the ``nth`` point whose path ends with ``match``
  and whose stage starts with ``stage`` (both optional).

Stages: ``append.before``, ``append.mid`` (half of the line written and flushed: a kill here
leaves a torn last line), ``append.fsync``, ``atomic.before``, ``atomic.mid`` (half of the
temporary file written), ``atomic.rename`` (temp file complete, not yet renamed),
``atomic.after`` (renamed, folder not yet fsynced).
"""

from __future__ import annotations

import errno as errno_module
import json
import os
import signal
from pathlib import Path
from typing import Any

ENV_VAR = "BILLP_FAULTS"

_UNREAD = object()
_spec: Any = _UNREAD
_count = 0
_matches = 0


def configure(spec: dict[str, Any] | None) -> None:
    """Set the fault spec for this process (``None``: no faults) and reset the counters."""
    global _spec, _count, _matches
    _spec = spec or None
    _count = 0
    _matches = 0


def _read_env() -> Any:
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENV_VAR} is not a JSON object: {exc}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{ENV_VAR} is not a JSON object: {raw!r}")
    return spec


def active() -> bool:
    """Whether a fault spec is set (the environment is read on the first call)."""
    global _spec
    if _spec is _UNREAD:
        _spec = _read_env()
    return _spec is not None


def point(stage: str, path: Path | str) -> None:
    """A fault point: trace it, kill here, or raise an injected ``OSError``."""
    if not active():
        return
    global _count, _matches
    _count += 1
    spec: dict[str, Any] = _spec
    trace = spec.get("trace")
    if trace:
        fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{_count}\t{stage}\t{path}\n".encode())
        finally:
            os.close(fd)
    if spec.get("kill_at") == _count:
        os.kill(os.getpid(), signal.SIGKILL)
    code = spec.get("errno")
    if code:
        if not str(path).endswith(spec.get("match", "")):
            return
        if not stage.startswith(spec.get("stage", "")):
            return
        _matches += 1
        if _matches == int(spec.get("nth", 1)):
            number = getattr(errno_module, code)
            raise OSError(number, os.strerror(number), str(path))
