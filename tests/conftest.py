"""Session fixtures shared across test packages: one billp cache for every run of the session,
and one tiny LE trained for all tests that need one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.le.tiny_le import TinyLE, build_tiny_le


@pytest.fixture(scope="session")
def billp_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One ``XDG_CACHE_HOME`` for the CLI runs of the whole session: the converted SmolLM2,
    the fitted rating models and the item embeddings are each made once. Every cache entry is
    keyed on what it depends on (the numeric environment included), so sharing the folder
    changes no result; tests of the caches themselves use folders of their own.

    Under pytest-xdist the workers share one folder beside their own temporary folders: model
    conversion holds a file lock and every cache write is an atomic rename, so workers that
    fill the same entry at once each write a whole, identical file."""
    if worker_id == "master":
        return tmp_path_factory.mktemp("billp-cache")
    shared = tmp_path_factory.getbasetemp().parent / "billp-cache"
    shared.mkdir(exist_ok=True)
    return shared


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


COSTLY_FIXTURES = {
    "tiny_runs": "eval-tiny-runs",
    "forkserver": "faults-forkserver",
    "tiny_le": "tiny-le",
    "tiny_model_dir": "vllm",
    "trained": "rl-trained",  # tests/rl/test_cli.py: every RL trainer run once
}
"""Session (or module) fixtures that are costly to build, and the xdist group of the tests
using each: under ``--dist loadgroup`` a group runs on one worker, so each is built once."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test that uses a costly fixture (or boots vLLM) into that fixture's
    xdist group; the real vLLM servers then also never start two at once on the 2 cores."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((g for f, g in COSTLY_FIXTURES.items() if f in names), None)
        if group is None and item.get_closest_marker("integration"):
            group = "vllm"
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
