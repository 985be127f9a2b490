"""Session fixtures shared across test packages: one billp cache for every run of the session,
and one tiny LE trained for all tests that need one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.le.tiny_le import TinyLE, build_tiny_le


@pytest.fixture(scope="session")
def billp_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``XDG_CACHE_HOME`` for the CLI runs of the whole session: the converted SmolLM2,
    the fitted rating models and the item embeddings are each made once. Every cache entry is
    keyed on what it depends on (the numeric environment included), so sharing the folder
    changes no result; tests of the caches themselves use folders of their own."""
    return tmp_path_factory.mktemp("billp-cache")


@pytest.fixture(scope="session", autouse=True)
def _cache_home(billp_cache: Path) -> Iterator[None]:
    """In-process code of the session (a world built in a test) uses the same cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(billp_cache))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def tiny_le(tmp_path_factory: pytest.TempPathFactory) -> TinyLE:
    return build_tiny_le(tmp_path_factory.mktemp("tiny-le"))
