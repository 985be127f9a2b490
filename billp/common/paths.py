"""Where billp keeps files that outlive a run."""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR_NAME = "billp"


def user_cache_dir() -> Path:
    """billp's cache: ``$XDG_CACHE_HOME/billp``, else ``~/.cache/billp``.

    Converted models, fitted rating models and catalogue embeddings live here; each is
    keyed by a hash of what it was built from, so a stale entry is never reused.
    """
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / APP_DIR_NAME
