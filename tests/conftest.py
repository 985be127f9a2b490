"""Session fixtures shared across test packages: one tiny LE trained for all tests that need one."""

from __future__ import annotations

import pytest

from tests.le.tiny_le import TinyLE, build_tiny_le


@pytest.fixture(scope="session")
def tiny_le(tmp_path_factory: pytest.TempPathFactory) -> TinyLE:
    return build_tiny_le(tmp_path_factory.mktemp("tiny-le"))
